// Reads an NDJSON file (or stdin) in padded chunks of whole lines.
#include "pipeline/file_source.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ingest/decoder.h"

namespace tierstream::pipeline {

Status FileSource::ReadFrom(uint32_t partition, uint64_t after, const RecordFn& fn) {
  const std::string& file = files_[partition];
  const bool is_stdin = file == "-";
  if (is_stdin && after > 0) {
    return Status::FailedPrecondition("stdin cannot be read from a position");
  }
  std::FILE* in = is_stdin ? stdin : std::fopen(file.c_str(), "rb");
  if (in == nullptr) {
    return Status::IoError("cannot read " + file + ": " + std::strerror(errno));
  }
  struct Closer {
    std::FILE* f;
    ~Closer() {
      if (f != stdin) std::fclose(f);
    }
  } closer{in};
  if (after > 0) {
    if (std::fseek(in, static_cast<long>(after), SEEK_SET) != 0) {
      return Status::IoError("cannot seek in " + file + ": " + std::strerror(errno));
    }
  }
  constexpr size_t kChunk = 4 << 20;
  ingest::PaddedBuffer buf(kChunk + ingest::kMaxLineBytes);
  uint64_t position = after;
  bool eof = false;
  while (!eof) {
    const size_t room = buf.capacity() - buf.size();
    const size_t n = std::fread(buf.data() + buf.size(), 1, room, in);
    if (n < room && std::ferror(in)) {
      return Status::IoError("cannot read " + file + ": " + std::strerror(errno));
    }
    buf.set_size(buf.size() + n);
    eof = n < room;
    std::string_view view = buf.view();
    size_t cut = view.size();
    if (!eof) {
      const size_t nl = view.rfind('\n');
      if (nl != std::string_view::npos) {
        cut = nl + 1;
      } else if (view.size() < buf.capacity()) {
        continue;
      }  // else: a line longer than the buffer; the decoder rejects it
    }
    if (cut > 0) {
      position += cut;
      Status s = fn(position, view.substr(0, cut));
      if (!s.ok()) return s;
    }
    buf.Consume(cut);
  }
  if (position == after && after > 0) {
    // Nothing at or after `after`: a position past the end is not one this
    // source gave out, unless it was the end.
    if (std::fseek(in, 0, SEEK_END) == 0 && static_cast<uint64_t>(std::ftell(in)) < after) {
      return Status::FailedPrecondition("position " + std::to_string(after) +
                                        " is past the end of " + file);
    }
  }
  return Status::Ok();
}

}  // namespace tierstream::pipeline
