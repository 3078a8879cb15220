// Turns the bytes of one HTTP body or TCP connection into pipeline batches
// and their outcomes into the ingest summary and acks.
#include "server/ingest_session.h"

#include <algorithm>
#include <cstring>

#include "common/json_writer.h"

namespace tierstream::server {

namespace {

void WriteErrors(JsonWriter& w, const std::vector<ingest::LineError>& errors, uint64_t last_line) {
  w.Key("errors").BeginArray();
  for (const auto& e : errors) {
    if (e.line > last_line) break;  // sorted by line
    w.BeginObject().Key("line").Int(static_cast<int64_t>(e.line)).Key("error").String(e.error);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string IngestProgress::ToAckJson() const {
  std::string out;
  JsonWriter(&out)
      .BeginObject()
      .Key("durable_lines")
      .Int(static_cast<int64_t>(durable_lines))
      .Key("accepted")
      .Int(static_cast<int64_t>(accepted))
      .Key("duplicates")
      .Int(static_cast<int64_t>(duplicates))
      .Key("rejected")
      .Int(static_cast<int64_t>(rejected))
      .EndObject();
  return out;
}

std::string IngestSummary::ToJson() const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  if (!status.ok()) w.Key("error").String(status.message());
  w.Key("accepted").Int(static_cast<int64_t>(accepted));
  w.Key("duplicates").Int(static_cast<int64_t>(duplicates));
  w.Key("rejected").Int(static_cast<int64_t>(rejected));
  WriteErrors(w, errors, UINT64_MAX);
  w.EndObject();
  return out;
}

std::string IngestSummary::ToStreamJson() const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  if (!durable.refused.ok()) w.Key("error").String(durable.refused.message());
  w.Key("accepted").Int(static_cast<int64_t>(durable.accepted));
  w.Key("duplicates").Int(static_cast<int64_t>(durable.duplicates));
  w.Key("rejected").Int(static_cast<int64_t>(durable.rejected));
  w.Key("durable_lines").Int(static_cast<int64_t>(durable.durable_lines));
  WriteErrors(w, errors, durable.durable_lines);
  w.EndObject();
  return out;
}

IngestSession::IngestSession(pipeline::Pipeline* pipeline, std::string source,
                             IngestCounters* counters)
    : pipeline_(pipeline), source_(std::move(source)), counters_(counters) {}

void IngestSession::SubmitDecoded(std::string_view complete_lines) {
  if (producer_) {
    // Lines as the decoder counts them: each complete one, and a final one
    // without its newline (the input ended).
    uint64_t lines =
        static_cast<uint64_t>(std::count(complete_lines.begin(), complete_lines.end(), '\n'));
    if (!complete_lines.empty() && complete_lines.back() != '\n') ++lines;
    const uint64_t first = next_line_;
    next_line_ += lines;
    uint64_t seq;
    {
      MutexLock lock(&mu_);
      ++outstanding_;
      seq = next_span_++;
      spans_.emplace_back().last_line = next_line_ - 1;
    }
    producer_(complete_lines, first,
              [self = shared_from_this(), seq, submitted = std::chrono::steady_clock::now()](
                  pipeline::BatchOutcome o) { self->OnBatchDone(seq, std::move(o), submitted); });
    return;
  }
  auto batch = pipeline_->NewBatch();
  pipeline::BatchBuilder builder(batch.get(), pipeline_->reject_log(), source_);
  next_line_ += decoder_.DecodeLines(complete_lines, next_line_, &batch->arena, &builder);
  Submit(std::move(batch));
}

void IngestSession::Submit(std::unique_ptr<pipeline::Batch> batch) {
  uint64_t seq;
  {
    MutexLock lock(&mu_);
    ++outstanding_;
    seq = next_span_++;
    spans_.emplace_back().last_line = next_line_ - 1;
  }
  pipeline_->Submit(
      std::move(batch),
      [self = shared_from_this(), seq, submitted = std::chrono::steady_clock::now()](
          pipeline::BatchOutcome o) { self->OnBatchDone(seq, std::move(o), submitted); });
}

namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";
}  // namespace

void IngestSession::Feed(std::string_view bytes) {
  // Streamed input only: a whole body (BeginWhole) needs no line buffer.
  if (pending_.capacity() == 0) pending_.Reserve(1 << 20);
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
        batch->rejected_by_reason[static_cast<size_t>(ingest::RejectReason::kTooLong)] = 1;
        batch->errors = std::move(outcome.errors);
        Submit(std::move(batch));
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

Status IngestSession::BeginWhole(const ingest::PaddedBuffer& body) {
  std::string_view view = body.view();
  if (view.substr(0, kBom.size()) == kBom) view.remove_prefix(kBom.size());
  bom_checked_ = true;
  whole_ = view;
  size_t i = 0;
  while (i < view.size() &&
         (view[i] == ' ' || view[i] == '\t' || view[i] == '\r' || view[i] == '\n'))
    ++i;
  if (i < view.size() && view[i] == '[') {
    // Framed once whole first (no parsing: cheap next to it), so that a
    // broken array is refused before any slice of it is submitted.
    ingest::ArrayFramer check(view);
    for (std::string_view element; check.Next(&element);) {
    }
    if (!check.error().empty()) {
      whole_ = {};
      return Status::InvalidArgument(check.error());
    }
    array_.emplace(view);
  }
  return Status::Ok();
}

bool IngestSession::FeedWholeSlice() {
  // Batches stay moderate, and so does one turn of the connection's thread
  // (HttpSession::FeedBody): 256 KiB of two-byte bad lines, the worst case,
  // take ~0.1 s to decode and log. (A TCP read is at most 256 KiB too.)
  constexpr size_t kSlice = 256 << 10;
  if (array_) {
    auto batch = pipeline_->NewBatch();
    pipeline::BatchBuilder builder(batch.get(), pipeline_->reject_log(), source_);
    const uint64_t elements =
        decoder_.DecodeArrayElements(&*array_, kSlice, &batch->arena, &builder);
    next_line_ += elements;  // element k is line k
    if (elements > 0) Submit(std::move(batch));
    if (!array_->done()) return false;
    array_.reset();
    whole_ = {};
    return true;
  }
  // NDJSON: cut at the first newline past the slice size.
  std::string_view rest = whole_;
  if (rest.empty()) return true;
  size_t cut = rest.size();
  if (rest.size() > kSlice) {
    const void* nl = std::memchr(rest.data() + kSlice, '\n', rest.size() - kSlice);
    cut = nl ? static_cast<size_t>(static_cast<const char*>(nl) - rest.data()) + 1 : rest.size();
  }
  // The body's own padding (or the lines after the slice) is the read-ahead.
  SubmitDecoded(rest.substr(0, cut));
  whole_.remove_prefix(cut);
  return whole_.empty();
}

void IngestSession::Finish(std::function<void(IngestSummary)> done, bool take_partial_line) {
  if (take_partial_line && !bom_checked_ && bom_seen_ > 0) {  // the input was a prefix of a mark
    bom_checked_ = true;
    Feed(kBom.substr(0, bom_seen_));
  }
  if (take_partial_line && !skipping_long_line_ && pending_.size() > 0) {
    SubmitDecoded(pending_.view());
  }
  pending_.Clear();
  std::function<void(IngestSummary)> finish;
  IngestSummary summary;
  {
    MutexLock lock(&mu_);
    finished_ = true;
    done_ = std::move(done);
    finish = TakeDone(&summary);
  }
  if (finish) Deliver(std::move(finish), std::move(summary));
}

IngestProgress IngestSession::Progress() {
  MutexLock lock(&mu_);
  return progress_;
}

void IngestSession::OnBatchDone(uint64_t seq, pipeline::BatchOutcome outcome,
                                std::chrono::steady_clock::time_point submitted) {
  if (counters_ != nullptr) counters_->Count(outcome, std::chrono::steady_clock::now() - submitted);
  std::function<void(IngestSummary)> finish;
  IngestSummary summary;
  bool notify = false;
  {
    MutexLock lock(&mu_);
    notify = Complete(seq, std::move(outcome));
    finish = TakeDone(&summary);
  }
  if (finish) Deliver(std::move(finish), std::move(summary));
  if (notify) on_progress_();
}

bool IngestSession::Complete(uint64_t seq, pipeline::BatchOutcome outcome) {
  summary_.accepted += outcome.accepted;
  summary_.duplicates += outcome.duplicates;
  summary_.rejected += outcome.rejected;
  // Only the first kMaxErrorsListed rejected lines (by line) are reported:
  // keep no more than that, however many batches a connection sends (each
  // brings up to as many, and they complete out of order).
  if (!outcome.errors.empty()) {
    for (auto& e : outcome.errors) summary_.errors.push_back(std::move(e));
    if (summary_.errors.size() > pipeline::kMaxErrorsListed) {
      auto by_line = [](const ingest::LineError& x, const ingest::LineError& y) {
        return x.line < y.line;
      };
      std::sort(summary_.errors.begin(), summary_.errors.end(), by_line);
      summary_.errors.resize(pipeline::kMaxErrorsListed);
    }
  }
  if (!outcome.status.ok() && summary_.status.ok()) summary_.status = outcome.status;
  Span& span = spans_[seq - first_span_];
  span.done = true;
  span.accepted = outcome.accepted;
  span.duplicates = outcome.duplicates;
  span.rejected = outcome.rejected;
  span.status = std::move(outcome.status);
  // Advance the prefix over the completed batches at its front.
  bool news = false;
  while (progress_.refused.ok() && !spans_.empty() && spans_.front().done) {
    Span& front = spans_.front();
    if (!front.status.ok()) {
      progress_.refused = front.status;
    } else {
      progress_.durable_lines = front.last_line;
      progress_.accepted += front.accepted;
      progress_.duplicates += front.duplicates;
      progress_.rejected += front.rejected;
      spans_.pop_front();
      ++first_span_;
    }
    news = true;
  }
  --outstanding_;
  return news && on_progress_ != nullptr;
}

std::function<void(IngestSummary)> IngestSession::TakeDone(IngestSummary* summary) {
  if (!finished_ || outstanding_ != 0 || !done_) return nullptr;
  auto done = std::move(done_);
  done_ = nullptr;
  summary_.durable = progress_;
  *summary = std::move(summary_);
  return done;
}

void IngestSession::Deliver(std::function<void(IngestSummary)> done, IngestSummary summary) {
  std::sort(summary.errors.begin(), summary.errors.end(),
            [](const ingest::LineError& a, const ingest::LineError& b) { return a.line < b.line; });
  if (summary.errors.size() > pipeline::kMaxErrorsListed) {
    summary.errors.resize(pipeline::kMaxErrorsListed);
  }
  done(std::move(summary));
}

}  // namespace tierstream::server
