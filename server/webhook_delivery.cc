// One webhook's delivery: feed reading, batching, signing, retries with
// backoff, and the saved position (webhook_delivery.h).
#include "server/webhook_delivery.h"

#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>
#include <charconv>

#include "common/log.h"
#include "server/webhook_signature.h"
#include "server/wire_json.h"

namespace tierstream::server {

namespace net = boost::asio;
namespace http = boost::beast::http;

namespace {

// Retries: 100 ms doubling to a minute, each wait drawn from [0, that].
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{60'000};
constexpr std::chrono::milliseconds kReadRetry{1000};
constexpr std::chrono::seconds kIdleSaveEvery{1};
constexpr std::chrono::seconds kFailureLogEvery{60};
constexpr size_t kRereadPage = 1000;

// The saved state: "<position>", or "<position> <last>" while the batch
// (position, last] is sealed and not yet answered 2xx.
std::string EncodeState(uint64_t position, uint64_t sealed_last) {
  std::string s = std::to_string(position);
  if (sealed_last > position) s += " " + std::to_string(sealed_last);
  return s;
}

bool DecodeState(std::string_view s, uint64_t* position, uint64_t* sealed_last) {
  const char* end = s.data() + s.size();
  auto r = std::from_chars(s.data(), end, *position);
  if (r.ec != std::errc()) return false;
  *sealed_last = 0;
  if (r.ptr == end) return true;
  if (*r.ptr != ' ') return false;
  r = std::from_chars(r.ptr + 1, end, *sealed_last);
  return r.ec == std::errc() && r.ptr == end && *sealed_last > *position;
}

std::string HostHeader(const state::WebhookConfig& c) {
  const bool v6 = c.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + c.host + "]" : c.host;
  if (c.port != 80) host += ":" + std::to_string(c.port);
  return host;
}

unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

WebhookDelivery::WebhookDelivery(std::shared_ptr<net::io_context> ioc, pipeline::Pipeline* pipeline,
                                 Spec spec, std::mt19937_64* rng)
    : ioc_(std::move(ioc)),
      pipeline_(pipeline),
      spec_(std::move(spec)),
      filter_{spec_.config.to, spec_.config.from},
      rng_(rng),
      post_(*ioc_, spec_.config.host, spec_.config.port,
            std::chrono::milliseconds(spec_.config.timeout_ms)),
      flush_timer_(*ioc_),
      retry_timer_(*ioc_) {
  MutexLock lock(&mu_);
  stats_.id = spec_.id;
  stats_.url = spec_.config.url;
}

Status WebhookDelivery::Load() {
  const std::string name = "webhook/" + spec_.id;
  std::string value;
  bool found = false;
  RETURN_IF_ERROR(pipeline_->GetConsumerState(name, &value, &found));
  uint64_t sealed_last = 0;
  if (!found) {
    position_ = pipeline_->ChangesEnd();
    RETURN_IF_ERROR(Save(position_, 0));
    Log(LogLevel::kInfo,
        "tierstream: webhook %s (%s) is new: it starts after cursor %llu, the feed's end",
        spec_.id.c_str(), spec_.config.url.c_str(), U(position_));
  } else if (!DecodeState(value, &position_, &sealed_last)) {
    return Status::Corruption("webhook " + spec_.id + ": saved position '" + value +
                              "' is not one");
  }
  saved_ = scanned_ = position_;
  {
    MutexLock lock(&mu_);
    stats_.position = position_;
  }
  if (sealed_last == 0) return Status::Ok();
  // Exactly the sealed batch: the changes passing the filter in
  // (position, sealed_last], as they were read before the restart.
  while (scanned_ < sealed_last) {
    pipeline::ChangePage page = pipeline_->ReadChanges(scanned_, kRereadPage, filter_);
    if (page.gone) {
      Skip(page.oldest);
      continue;
    }
    RETURN_IF_ERROR(page.status);
    for (Change& c : page.changes) {
      if (c.first <= sealed_last) pending_.push_back(std::move(c));
    }
    if (page.next <= scanned_) break;
    scanned_ = std::min(page.next, sealed_last);
  }
  if (pending_.empty()) return Status::Ok();  // retention took it all meanwhile
  {
    MutexLock lock(&mu_);
    stats_.oldest_waiting_ms = pending_.front().second.written_ms;
  }
  MakeBatch();
  Log(LogLevel::kInfo,
      "tierstream: webhook %s sends again the batch %llu-%llu it had not delivered",
      spec_.id.c_str(), U(batch_->first), U(batch_->last));
  return Status::Ok();
}

void WebhookDelivery::Start() { Pump(); }

void WebhookDelivery::Detach() {
  if (feed_wait_ && feed_token_ != 0) pipeline_->CancelChangesWait(feed_token_);
  feed_wait_ = false;
  if (!batch_ && pending_.empty() && position_ > saved_) (void)Save(position_, 0);
}

WebhookStats WebhookDelivery::Stats() const {
  WebhookStats s;
  {
    MutexLock lock(&mu_);
    s = stats_;
  }
  const uint64_t end = pipeline_->ChangesEnd();
  s.lag_changes = end > s.position ? end - s.position : 0;
  if (s.oldest_waiting_ms != 0) {
    s.lag_seconds =
        static_cast<double>(std::max<int64_t>(0, pipeline_->WallClockMs() - s.oldest_waiting_ms)) /
        1000.0;
  }
  return s;
}

void WebhookDelivery::Pump() {
  if (batch_) {
    if (!sending_ && !paused_) Send();
    return;
  }
  if (paused_) return;
  const size_t max_batch = spec_.config.max_batch;
  const auto now = Clock::now();
  while (pending_.size() < max_batch && scanned_ < pipeline_->ChangesEnd()) {
    pipeline::ChangePage page =
        pipeline_->ReadChanges(scanned_, max_batch - pending_.size(), filter_);
    if (page.gone) {
      Skip(page.oldest);
      continue;
    }
    if (!page.status.ok()) {
      NoteError("change feed read failed: " + page.status.ToString(), false);
      return Pause(kReadRetry);
    }
    if (page.changes.empty() && page.next <= scanned_) break;
    for (Change& c : page.changes) {
      if (pending_.empty()) {
        // Due max_delay_ms after the change was written, not after it was
        // read: a webhook catching up does not wait again.
        const int64_t age_ms = std::max<int64_t>(0, pipeline_->WallClockMs() - c.second.written_ms);
        first_pending_ = now - std::chrono::milliseconds(age_ms);
        MutexLock lock(&mu_);
        stats_.oldest_waiting_ms = c.second.written_ms;
      }
      pending_.push_back(std::move(c));
    }
    scanned_ = std::max(scanned_, page.next);
  }
  const auto due = first_pending_ + std::chrono::milliseconds(spec_.config.max_delay_ms);
  if (!pending_.empty() && (pending_.size() >= max_batch || now >= due)) return Seal();
  if (pending_.empty()) {
    AdvanceIdle(now);
  } else {
    ArmFlush();
  }
  WaitForFeed();
}

void WebhookDelivery::MakeBatch() {
  Batch b;
  b.first = pending_.front().first;
  b.last = pending_.back().first;
  b.changes = pending_.size();
  auto req = std::make_shared<WebhookPost::Request>(http::verb::post, spec_.config.target, 11);
  req->set(http::field::host, HostHeader(spec_.config));
  req->set(http::field::user_agent, "tierstream");
  req->set(http::field::content_type, "application/json");
  req->body() = RenderChangeBatchJson(pending_);
  req->set("X-Tierstream-Signature", WebhookSignature(spec_.secret, req->body()));
  req->set("Idempotency-Key", std::to_string(b.first) + "-" + std::to_string(b.last));
  req->set("X-Tierstream-Webhook", spec_.id);
  req->prepare_payload();
  b.request = std::move(req);
  batch_ = std::move(b);
  pending_.clear();
}

void WebhookDelivery::Seal() {
  // Saved before the first byte is sent: whatever is sent, a restart sends
  // again as it is (same body, same key), never cut differently.
  Status s = Save(position_, pending_.back().first);
  if (!s.ok()) {
    NoteError("saving the webhook's position failed: " + s.ToString(), false);
    return Pause(kReadRetry);
  }
  MakeBatch();
  Send();
}

void WebhookDelivery::Send() {
  sending_ = true;
  post_.Send(batch_->request, [this](WebhookPost::Outcome outcome) { OnAnswer(outcome); });
}

void WebhookDelivery::OnAnswer(const WebhookPost::Outcome& outcome) {
  sending_ = false;
  if (outcome.status >= 200 && outcome.status < 300) {
    position_ = batch_->last;
    scanned_ = std::max(scanned_, position_);
    uint64_t failed;
    {
      MutexLock lock(&mu_);
      failed = stats_.consecutive_failures;
      stats_.consecutive_failures = 0;
      ++stats_.delivered_batches;
      stats_.delivered_changes += batch_->changes;
      stats_.position = position_;
      stats_.oldest_waiting_ms = 0;
    }
    if (failed > 0) {
      Log(LogLevel::kInfo, "tierstream: webhook %s delivered %llu-%llu after %llu failures",
          spec_.id.c_str(), U(batch_->first), U(batch_->last), U(failed));
    }
    batch_.reset();
    attempts_ = 0;
    Status s = Save(position_, 0);
    if (!s.ok()) NoteError("saving the webhook's position failed: " + s.ToString(), false);
    return Pump();
  }
  NoteError(outcome.status != 0 ? "HTTP " + std::to_string(outcome.status) : outcome.error, true);
  ++attempts_;
  const auto cap =
      std::min(kMaxBackoff, kFirstBackoff * (int64_t{1} << std::min(attempts_ - 1, 20)));
  std::uniform_int_distribution<int64_t> jitter(0, cap.count());
  Pause(std::chrono::milliseconds(jitter(*rng_)));
}

void WebhookDelivery::NoteError(const std::string& what, bool failed_post) {
  uint64_t failures;
  {
    MutexLock lock(&mu_);
    stats_.last_error = what;
    if (failed_post) {
      ++stats_.consecutive_failures;
      ++stats_.failures_total;
    }
    failures = stats_.consecutive_failures;
  }
  // The first failed POST of a streak, then at most once a minute.
  const auto now = Clock::now();
  const bool first = failed_post && failures == 1;
  if (!first && now - last_failure_log_ < kFailureLogEvery) return;
  last_failure_log_ = now;
  if (failed_post) {
    Log(LogLevel::kWarning,
        "tierstream: webhook %s (%s): batch %llu-%llu failed (%s), %llu in a row; retrying",
        spec_.id.c_str(), spec_.config.url.c_str(), U(batch_->first), U(batch_->last), what.c_str(),
        U(failures));
  } else {
    Log(LogLevel::kError, "tierstream: webhook %s: %s; retrying", spec_.id.c_str(), what.c_str());
  }
}

void WebhookDelivery::Pause(std::chrono::milliseconds delay) {
  paused_ = true;
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    paused_ = false;
    Pump();
  });
}

void WebhookDelivery::ArmFlush() {
  if (flush_armed_) return;
  flush_armed_ = true;
  flush_timer_.expires_at(first_pending_ + std::chrono::milliseconds(spec_.config.max_delay_ms));
  flush_timer_.async_wait([this](boost::system::error_code ec) {
    flush_armed_ = false;
    if (!ec) Pump();
  });
}

void WebhookDelivery::WaitForFeed() {
  if (feed_wait_) return;
  feed_wait_ = true;
  // On a worker thread: only a post, never a wait.
  feed_token_ = pipeline_->OnChangesAfter(scanned_, [ioc = ioc_, this] {
    net::post(*ioc, [this] {
      feed_wait_ = false;
      feed_token_ = 0;
      Pump();
    });
  });
}

void WebhookDelivery::Skip(uint64_t oldest) {
  const uint64_t lost = oldest > scanned_ ? oldest - scanned_ : 0;
  Log(LogLevel::kError,
      "tierstream: webhook %s (%s): the changes after %llu through %llu were removed by the "
      "feed's retention before they were delivered; it resumes after %llu",
      spec_.id.c_str(), spec_.config.url.c_str(), U(scanned_), U(oldest), U(oldest));
  {
    MutexLock lock(&mu_);
    stats_.skipped_changes += lost;
    stats_.last_error = "changes after " + std::to_string(scanned_) + " through " +
                        std::to_string(oldest) + " passed retention undelivered";
  }
  scanned_ = std::max(scanned_, oldest);
}

void WebhookDelivery::AdvanceIdle(Clock::time_point now) {
  if (scanned_ <= position_) return;
  position_ = scanned_;
  {
    MutexLock lock(&mu_);
    stats_.position = position_;
  }
  if (now - last_save_ < kIdleSaveEvery) return;
  Status s = Save(position_, 0);
  if (!s.ok()) NoteError("saving the webhook's position failed: " + s.ToString(), false);
}

Status WebhookDelivery::Save(uint64_t position, uint64_t sealed_last) {
  last_save_ = Clock::now();
  RETURN_IF_ERROR(
      pipeline_->PutConsumerState("webhook/" + spec_.id, EncodeState(position, sealed_last)));
  saved_ = position;
  return Status::Ok();
}

}  // namespace tierstream::server
