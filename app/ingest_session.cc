#include "app/ingest_session.h"

#include <algorithm>
#include <cstring>

#include "common/json_writer.h"

namespace tierstream::app {

std::string IngestSummary::ToJson() const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  if (!status.ok()) w.Key("error").String(status.message());
  w.Key("accepted").Int(static_cast<int64_t>(accepted));
  w.Key("duplicates").Int(static_cast<int64_t>(duplicates));
  w.Key("rejected").Int(static_cast<int64_t>(rejected));
  w.Key("errors").BeginArray();
  for (const auto& e : errors) {
    w.BeginObject().Key("line").Int(static_cast<int64_t>(e.line)).Key("error").String(e.error);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return out;
}

IngestSession::IngestSession(pipeline::Pipeline* pipeline, std::string source)
    : pipeline_(pipeline), source_(std::move(source)) {
  pending_.Reserve(1 << 20);
}

void IngestSession::SubmitDecoded(std::string_view complete_lines) {
  auto batch = pipeline_->NewBatch();
  pipeline::BatchBuilder builder(batch.get(), pipeline_->reject_log(), source_);
  next_line_ += decoder_.DecodeLines(complete_lines, next_line_, &batch->arena, &builder);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++outstanding_;
  }
  auto self = shared_from_this();
  pipeline_->Submit(std::move(batch),
                    [self](pipeline::BatchOutcome outcome) { self->OnBatchDone(std::move(outcome)); });
}

namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

void IngestSession::Feed(std::string_view bytes) {
  while (!bom_checked_ && !bytes.empty()) {
    if (bytes[0] == kBom[bom_seen_]) {
      bytes.remove_prefix(1);
      bom_checked_ = ++bom_seen_ == kBom.size();
      continue;
    }
    // Not a byte-order mark: what looked like its start is input.
    bom_checked_ = true;
    if (bom_seen_ > 0) Feed(kBom.substr(0, bom_seen_));
  }
  while (!bytes.empty()) {
    if (skipping_long_line_) {
      const void* nl = std::memchr(bytes.data(), '\n', bytes.size());
      if (nl == nullptr) return;
      bytes.remove_prefix(static_cast<size_t>(static_cast<const char*>(nl) - bytes.data()) + 1);
      skipping_long_line_ = false;
      continue;
    }
    // Take bytes up to the last newline of this chunk, or everything.
    const char* last_nl = nullptr;
    for (const char* p = bytes.data() + bytes.size(); p != bytes.data();) {
      --p;
      if (*p == '\n') {
        last_nl = p;
        break;
      }
    }
    if (last_nl == nullptr) {
      if (pending_.size() + bytes.size() > ingest::kMaxLineBytes) {
        // Too long to ever be accepted: count it once and drop the rest of it.
        pipeline::BatchOutcome outcome;
        outcome.rejected = 1;
        outcome.errors.push_back({next_line_, "line exceeds 1 MiB"});
        if (pipeline_->reject_log()) {
          pipeline_->reject_log()->Append(source_, next_line_, "line exceeds 1 MiB",
                                          pending_.view().substr(0, 512));
        }
        ++next_line_;
        pending_.Clear();
        skipping_long_line_ = true;
        auto batch = pipeline_->NewBatch();
        batch->rejected = 1;
        batch->errors = std::move(outcome.errors);
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++outstanding_;
        }
        auto self = shared_from_this();
        pipeline_->Submit(std::move(batch), [self](pipeline::BatchOutcome o) {
          self->OnBatchDone(std::move(o));
        });
        return;
      }
      pending_.Append(bytes);
      return;
    }
    const size_t head = static_cast<size_t>(last_nl - bytes.data()) + 1;
    pending_.Append(bytes.substr(0, head));
    SubmitDecoded(pending_.view());
    pending_.Clear();
    bytes.remove_prefix(head);
  }
}

Status IngestSession::FeedWhole(std::string_view body) {
  if (body.substr(0, kBom.size()) == kBom) body.remove_prefix(kBom.size());
  bom_checked_ = true;
  size_t i = 0;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
    ++i;
  if (i < body.size() && body[i] == '[') {
    ingest::PaddedBuffer buf(body.size());
    buf.Append(body);
    auto batch = pipeline_->NewBatch();
    pipeline::BatchBuilder builder(batch.get(), pipeline_->reject_log(), source_);
    std::string error = decoder_.DecodeArray(buf.view(), &batch->arena, &builder);
    if (!error.empty()) return Status::InvalidArgument(error);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++outstanding_;
    }
    auto self = shared_from_this();
    pipeline_->Submit(std::move(batch), [self](pipeline::BatchOutcome o) {
      self->OnBatchDone(std::move(o));
    });
    return Status::Ok();
  }
  // NDJSON: decode in slices of about 1 MiB so batches stay moderate.
  ingest::PaddedBuffer buf(body.size());
  buf.Append(body);
  std::string_view rest = buf.view();
  constexpr size_t kSlice = 1 << 20;
  while (!rest.empty()) {
    size_t cut = rest.size();
    if (rest.size() > kSlice) {
      const void* nl = std::memchr(rest.data() + kSlice, '\n', rest.size() - kSlice);
      cut = nl ? static_cast<size_t>(static_cast<const char*>(nl) - rest.data()) + 1 : rest.size();
    }
    SubmitDecoded(rest.substr(0, cut));
    rest.remove_prefix(cut);
  }
  return Status::Ok();
}

void IngestSession::Finish(std::function<void(IngestSummary)> done) {
  if (!bom_checked_ && bom_seen_ > 0) {  // the input was a prefix of a mark
    bom_checked_ = true;
    Feed(kBom.substr(0, bom_seen_));
  }
  if (!skipping_long_line_ && pending_.size() > 0) {
    SubmitDecoded(pending_.view());
    pending_.Clear();
  }
  std::unique_lock<std::mutex> lock(mu_);
  finished_ = true;
  done_ = std::move(done);
  MaybeFinish(lock);
}

void IngestSession::OnBatchDone(pipeline::BatchOutcome outcome) {
  std::unique_lock<std::mutex> lock(mu_);
  summary_.accepted += outcome.accepted;
  summary_.duplicates += outcome.duplicates;
  summary_.rejected += outcome.rejected;
  for (auto& e : outcome.errors) summary_.errors.push_back(std::move(e));
  if (!outcome.status.ok() && summary_.status.ok()) summary_.status = outcome.status;
  --outstanding_;
  MaybeFinish(lock);
}

void IngestSession::MaybeFinish(std::unique_lock<std::mutex>& lock) {
  if (!finished_ || outstanding_ != 0 || !done_) return;
  auto done = std::move(done_);
  done_ = nullptr;
  IngestSummary summary = std::move(summary_);
  lock.unlock();
  std::sort(summary.errors.begin(), summary.errors.end(),
            [](const ingest::LineError& a, const ingest::LineError& b) { return a.line < b.line; });
  if (summary.errors.size() > pipeline::kMaxErrorsListed) {
    summary.errors.resize(pipeline::kMaxErrorsListed);
  }
  done(std::move(summary));
}

}  // namespace tierstream::app
