// The streamed tier listing (GET /v1/tiers/{tier}/users?format=ndjson):
// renders a tier's members page by page as NDJSON, and ends it with an
// error line, cut short, when a page cannot be read.
#include <memory>
#include <utility>

#include "server/http_api.h"

namespace tierstream::server::api {

namespace {

// Every member of a tier, one {"user_id":...} or one profile (the JSON of
// GET /v1/users/{id}) per line, in user-id order. One page of members is
// asked for at a time, when the session asks for the next piece (after it
// wrote the last one). Pages are read one after another, not as of one
// moment: a member who changes tier meanwhile may be listed in both or
// neither. A page that could not be read (TierPage::status) is not sent, as
// it may miss a shard's members: the body ends with one
// {"error":"store read failed: ..."} line instead, and incomplete (see
// BodyStream::failed); after= the last member received resumes it.
class TierStream : public BodyStream, public std::enable_shared_from_this<TierStream> {
 public:
  TierStream(pipeline::Pipeline* pipeline, state::Tier tier, std::string after, bool profiles,
             size_t page_size, std::shared_ptr<Executor> executor)
      : pipeline_(pipeline),
        tier_(tier),
        after_(std::move(after)),
        profiles_(profiles),
        page_size_(page_size),
        executor_(std::move(executor)) {}

  void Next(std::function<void(std::string piece)> piece) override {
    if (last_) return piece({});
    pipeline_->ListTierPage(
        tier_, after_, page_size_, profiles_,
        [self = shared_from_this(), piece = std::move(piece)](pipeline::TierPage page) mutable {
          self->executor_->Post([self, piece = std::move(piece), p = std::move(page)]() mutable {
            piece(self->Render(std::move(p)));
          });
        });
  }
  bool failed() const override { return failed_; }

 private:
  std::string Render(pipeline::TierPage page) {
    std::string data;
    if (!page.status.ok()) {
      data = ErrorBody(QueryFailure(page.status));
      data += '\n';
      last_ = failed_ = true;
      return data;
    }
    AppendTierPageNdjson(page, profiles_, &data);
    last_ = !page.more;
    if (!page.user_ids.empty()) after_ = std::move(page.user_ids.back());
    return data;
  }

  pipeline::Pipeline* const pipeline_;
  const state::Tier tier_;
  std::string after_;  // the last member rendered
  const bool profiles_;
  const size_t page_size_;
  std::shared_ptr<Executor> executor_;
  bool last_ = false;    // the page rendered last had no more after it
  bool failed_ = false;  // ... or could not be read: the body ended with an error line
};

}  // namespace

std::shared_ptr<BodyStream> TierListing(pipeline::Pipeline* pipeline, state::Tier tier,
                                        std::string after, bool profiles, size_t page_size,
                                        std::shared_ptr<Executor> executor) {
  return std::make_shared<TierStream>(pipeline, tier, std::move(after), profiles, page_size,
                                      std::move(executor));
}

}  // namespace tierstream::server::api
