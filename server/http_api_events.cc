// POST /v1/events: feeds a request body to the pipeline, within its
// in-flight bound, and answers the body's ingest summary.
#include <memory>
#include <utility>

#include "server/http_api.h"
#include "server/ingest_session.h"

namespace tierstream::server::api {

namespace {

// While the pipeline is full, producers look again this often.
constexpr std::chrono::milliseconds kCapacityPoll{1};

// One body being submitted. Keeps itself alive through its callbacks;
// confined to the connection's thread.
class Upload : public std::enable_shared_from_this<Upload> {
 public:
  Upload(pipeline::Pipeline* pipeline, const Request& request, IngestCounters* counters,
         std::shared_ptr<Executor> executor, std::function<void(Response)> reply)
      : pipeline_(pipeline),
        counters_(counters),
        body_(request.body),
        release_body_(request.release_body),
        executor_(std::move(executor)),
        reply_(std::move(reply)) {}

  // Backpressure: waits while the pipeline holds more than its bound.
  void Start() {
    if (!pipeline_->HasCapacity()) {
      executor_->PostAfter(kCapacityPoll, [self = shared_from_this()] { self->Start(); });
      return;
    }
    if (pipeline_->DiskLow()) {
      // Refuse the body whole rather than take part of it.
      IngestSummary refused;
      refused.status = Status::Unavailable(
          "disk space is below the watermark; ingest resumes when space returns");
      return Answer(Json(503, refused.ToJson()));
    }
    static const ingest::PaddedBuffer kEmpty;
    ingest_ = std::make_shared<IngestSession>(pipeline_, "http", counters_);
    Status s = ingest_->BeginWhole(body_ != nullptr ? *body_ : kEmpty);
    if (!s.ok()) {
      ingest_.reset();
      return Answer(Json(400, ErrorBody(s.message())));
    }
    Feed();
  }

 private:
  // Submits the body slice by slice, pausing while the pipeline is full, as
  // a TCP producer's reads do: the events decoded from bodies stay within
  // the pipeline's in-flight bound too, rather than a whole body's worth
  // past it per request. Then the body goes, and the answer waits for the
  // batches.
  void Feed() {
    for (bool done = false; !done;) {
      if (!pipeline_->HasCapacity()) {
        executor_->PostAfter(kCapacityPoll, [self = shared_from_this()] { self->Feed(); });
        return;
      }
      done = ingest_->FeedWholeSlice();
      if (!done) {
        // One slice per turn: a body of 64 MiB of bad lines (which never
        // fill the pipeline) takes seconds to decode, and the other
        // connections of this thread, the listeners on lane 0 among them,
        // must not wait for all of it.
        executor_->Post([self = shared_from_this()] { self->Feed(); });
        return;
      }
    }
    ReleaseBody();
    std::shared_ptr<IngestSession> ingest = std::move(ingest_);
    ingest->Finish([self = shared_from_this()](IngestSummary summary) {
      Response res = Json(summary.status.ok() ? 200 : 503, summary.ToJson());
      self->executor_->Post([self, r = std::move(res)]() mutable { self->Answer(std::move(r)); });
    });
  }

  void ReleaseBody() {
    body_ = nullptr;
    if (release_body_) std::exchange(release_body_, nullptr)();
  }

  void Answer(Response response) {
    ReleaseBody();
    std::exchange(reply_, nullptr)(std::move(response));
  }

  pipeline::Pipeline* const pipeline_;
  IngestCounters* const counters_;
  const ingest::PaddedBuffer* body_;
  std::function<void()> release_body_;
  std::shared_ptr<Executor> executor_;
  std::function<void(Response)> reply_;
  std::shared_ptr<IngestSession> ingest_;
};

}  // namespace

void PostEvents(pipeline::Pipeline* pipeline, const Request& request, IngestCounters* counters,
                std::shared_ptr<Executor> executor, std::function<void(Response)> reply) {
  std::make_shared<Upload>(pipeline, request, counters, std::move(executor), std::move(reply))
      ->Start();
}

}  // namespace tierstream::server::api
