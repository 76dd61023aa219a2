// berth.admin.v1.Admin.
#include "cri/admin_service.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cri/grpc_status.h"

namespace berth::cri {

namespace {

// Writes all of `data` to `fd`.
absl::Status WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError("write the import spool file");
    }
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status AdminService::PullWithProgress(grpc::ServerContext* ctx,
                                            const admin::PullWithProgressRequest* req,
                                            grpc::ServerWriter<admin::PullProgressEvent>* writer) {
  const ::runtime::v1::AuthConfig& a = req->pull().auth();
  absl::StatusOr<images::Credentials> creds = images::CredentialsFromAuthConfig(
      a.username(), a.password(), a.auth(), a.identity_token(), a.registry_token());
  if (!creds.ok()) return ToGrpcStatus(creds.status());
  const std::string image = req->pull().image().image();

  // Progress calls come from the puller's worker threads; this (the RPC's) thread is the only
  // one that writes to the stream.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<admin::PullProgressEvent> queue;
  bool finished = false;
  absl::StatusOr<images::ImageRecord> result = absl::UnknownError("pull did not run");
  const absl::Time start = absl::Now();
  std::thread puller([&] {
    absl::StatusOr<images::ImageRecord> rec =
        store_->Pull(image, *creds, [&](const images::PullProgress& p) {
          admin::PullProgressEvent e;
          e.set_layer_digest(p.digest.ToString());
          e.set_done(p.done);
          e.set_total(p.total);
          e.set_state(images::PullStateName(p.state));
          std::lock_guard<std::mutex> l(mu);
          queue.push_back(std::move(e));
          cv.notify_one();
        });
    std::lock_guard<std::mutex> l(mu);
    result = std::move(rec);
    finished = true;
    cv.notify_one();
  });
  bool client_gone = false;
  for (;;) {
    std::deque<admin::PullProgressEvent> batch;
    bool done = false;
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return finished || !queue.empty(); });
      batch.swap(queue);
      done = finished;
    }
    // A client that went away stops reading; the pull still completes (others may wait on it).
    for (const admin::PullProgressEvent& e : batch) {
      if (!client_gone && (ctx->IsCancelled() || !writer->Write(e))) client_gone = true;
    }
    if (done) break;
  }
  puller.join();
  if (!result.ok()) return ToGrpcStatus(result.status());
  log::Info("pulled image", {{"image", image},
                             {"id", result->id.ToString()},
                             {"bytes", result->size},
                             {"duration_ms", absl::ToDoubleMilliseconds(absl::Now() - start)}});
  admin::PullProgressEvent last;
  last.set_image_ref(result->id.ToString());
  last.set_state("done");
  if (!client_gone) writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status AdminService::ImportImage(grpc::ServerContext* ctx,
                                       grpc::ServerReader<admin::ImportImageRequest>* reader,
                                       admin::ImportImageResponse* resp) {
  absl::Status st = MkdirAll(absl::StrCat(state_dir_, "/import"), 0700);
  if (!st.ok()) return ToGrpcStatus(st);
  std::string path = absl::StrCat(state_dir_, "/import/archive-XXXXXX");
  UniqueFd fd(::mkostemp(path.data(), O_CLOEXEC));
  if (!fd) return ToGrpcStatus(LastErrnoError(absl::StrCat("create ", path)));
  struct Unlink {
    std::string path;
    ~Unlink() { ::unlink(path.c_str()); }
  } unlink_spool{path};

  std::vector<std::string> tags;
  uint64_t size = 0;
  bool first = true;
  admin::ImportImageRequest msg;
  while (reader->Read(&msg)) {
    if (msg.has_header()) {
      if (!first) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "ImportImage: the header must be the first message");
      }
      tags.assign(msg.header().tags().begin(), msg.header().tags().end());
    } else if (msg.part_case() == admin::ImportImageRequest::kChunk) {
      size += msg.chunk().size();
      if (size > kMaxImportBytes) {
        return grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("ImportImage: the archive is larger than ", kMaxImportBytes, " bytes"));
      }
      st = WriteAll(fd.get(), msg.chunk());
      if (!st.ok()) return ToGrpcStatus(st);
    }
    first = false;
  }
  if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "import cancelled");
  if (size == 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "ImportImage: no archive was sent");
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<images::ImageRecord> rec = store_->Import(path, tags);
  if (!rec.ok()) {
    return ToGrpcStatus(Annotate(rec.status(), "importing the OCI archive"));
  }
  log::Info("imported image", {{"id", rec->id.ToString()},
                               {"bytes", size},
                               {"duration_ms", absl::ToDoubleMilliseconds(absl::Now() - start)}});
  resp->set_image_ref(rec->id.ToString());
  for (const std::string& t : rec->repo_tags) resp->add_tags(t);
  return grpc::Status::OK;
}

}  // namespace berth::cri
