// TcpIngestSession: one producer connection of the TCP NDJSON ingest port.
// While it sends, it gets ack lines of its durable
// prefix (IngestProgress), at most one per kAckInterval and only when the
// prefix grew. Its input ends at half-close (the incomplete last line counts),
// at the idle timeout, at shutdown or when a batch is refused (then an
// incomplete last line is dropped); once the submitted batches are done it
// gets the final line (IngestSummary::ToStreamJson) and the connection is
// closed. Confined to its lane's thread but for the progress notification.
//
// Ownership: keeps itself alive through its pending operations; counts
// itself in the server's connections while it lives.
#ifndef TIERSTREAM_SERVER_TCP_INGEST_SESSION_H_
#define TIERSTREAM_SERVER_TCP_INGEST_SESSION_H_

#include <boost/asio/ip/tcp.hpp>

#include "server/lane.h"
#include "server/server_impl.h"

namespace tierstream::server {

// Admits `socket`, just accepted on lane 0, and starts its session on
// `lane`: or answers it the "too many connections" line and closes it.
void StartTcpIngestSession(boost::asio::ip::tcp::socket socket, Server::Impl* server, Lane* lane);

}  // namespace tierstream::server

#endif  // TIERSTREAM_SERVER_TCP_INGEST_SESSION_H_
