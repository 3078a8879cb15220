// The webhooks' thread and life cycle: secrets, ids, start, stop, stats
// (webhooks.h).
#include "server/webhooks.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <utility>  // before Asio: Boost 1.74 Asio in C++20 mode needs std::exchange

#include "common/hash.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/thread_name.h"
#include "server/webhook_delivery.h"

namespace tierstream::server {

namespace net = boost::asio;

namespace {

Result<std::string> ReadSecret(const std::string& path, const std::string& field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(field + ": cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string secret = ss.str();
  const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!secret.empty() && blank(secret.back())) secret.pop_back();
  size_t start = 0;
  while (start < secret.size() && blank(secret[start])) ++start;
  secret.erase(0, start);
  if (secret.empty()) return Status::InvalidArgument(field + ": " + path + " is empty");
  return secret;
}

}  // namespace

struct Webhooks::Impl {
  std::vector<WebhookDelivery::Spec> specs;
  // Shared with the feed's callbacks, which may post after Stop().
  std::shared_ptr<net::io_context> ioc = std::make_shared<net::io_context>(1);
  std::thread thread;
  bool stopped = false;
  std::mt19937_64 rng{std::random_device{}()};
  // Destroyed before the io_context (declared after it): their sockets and
  // timers belong to it.
  mutable Mutex mu;
  std::vector<std::unique_ptr<WebhookDelivery>> deliveries ABSL_GUARDED_BY(mu);
};

Webhooks::Webhooks(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Webhooks::~Webhooks() { Stop(); }

std::string Webhooks::Id(const state::WebhookConfig& hook) {
  const std::string key =
      hook.url + '\n' + std::to_string(hook.to) + '\n' + std::to_string(hook.from);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Hash64(key)));
  return hex;
}

Result<std::unique_ptr<Webhooks>> Webhooks::Create(const std::vector<state::WebhookConfig>& hooks) {
  auto impl = std::make_unique<Impl>();
  for (size_t i = 0; i < hooks.size(); ++i) {
    WebhookDelivery::Spec spec;
    spec.config = hooks[i];
    spec.id = Id(hooks[i]);
    const std::string field = "config: webhooks[" + std::to_string(i) + "].secret_file";
    ASSIGN_OR_RETURN(spec.secret, ReadSecret(hooks[i].secret_file, field));
    impl->specs.push_back(std::move(spec));
  }
  return std::unique_ptr<Webhooks>(new Webhooks(std::move(impl)));
}

Status Webhooks::Start(pipeline::Pipeline* pipeline,
                       std::function<void(const Status& failure)> on_failure) {
  if (!pipeline->change_log()) {
    return Status::InvalidArgument("webhooks: the change feed is off (config: changes.enabled)");
  }
  std::vector<WebhookDelivery*> started;
  {
    MutexLock lock(&impl_->mu);
    for (const WebhookDelivery::Spec& spec : impl_->specs) {
      auto d = std::make_unique<WebhookDelivery>(impl_->ioc, pipeline, spec, &impl_->rng);
      Status s = d->Load();
      if (!s.ok()) {
        return Status(s.code(), "webhook " + spec.id + " (" + spec.config.url +
                                    "): " + std::string(s.message()));
      }
      started.push_back(d.get());
      impl_->deliveries.push_back(std::move(d));
    }
  }
  for (WebhookDelivery* d : started) net::post(*impl_->ioc, [d] { d->Start(); });
  impl_->thread = std::thread([ioc = impl_->ioc, on_failure = std::move(on_failure)] {
    NameThisThread("webhooks");
    auto work = net::make_work_guard(*ioc);
    std::string what;
    // A delivery caught in the middle of a step cannot be trusted to go on;
    // its saved position can.
    try {
      ioc->run();
      return;
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "unknown exception";
    }
    if (on_failure) on_failure(Status::Internal("the webhooks' thread failed: " + what));
  });
  Log(LogLevel::kInfo, "tierstream: %zu webhook%s delivering", started.size(),
      started.size() == 1 ? "" : "s");
  return Status::Ok();
}

void Webhooks::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->ioc->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  MutexLock lock(&impl_->mu);
  for (auto& d : impl_->deliveries) d->Detach();
}

std::vector<WebhookStats> Webhooks::Stats() const {
  std::vector<WebhookStats> out;
  MutexLock lock(&impl_->mu);
  if (impl_->deliveries.empty()) {
    for (const auto& spec : impl_->specs) {
      WebhookStats s;
      s.id = spec.id;
      s.url = spec.config.url;
      out.push_back(std::move(s));
    }
    return out;
  }
  for (const auto& d : impl_->deliveries) out.push_back(d->Stats());
  return out;
}

}  // namespace tierstream::server
