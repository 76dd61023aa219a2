// berth.admin.v1.Admin: berth's own service on the CRI socket, for what the CRI lacks (pull
// progress, importing an OCI image layout). berthctl uses it only against berthd.
#pragma once

#include <string>

#include "cri/api/cri.h"
#include "images/image_store.h"

namespace berth::cri {

namespace admin = ::berth::admin::v1;

class AdminService final : public admin::Admin::Service {
 public:
  // Imports are spooled to a temporary file under `state_dir`.
  AdminService(images::ImageStore* store, std::string state_dir)
      : store_(store), state_dir_(std::move(state_dir)) {}

  grpc::Status PullWithProgress(grpc::ServerContext* ctx, const admin::PullWithProgressRequest* req,
                                grpc::ServerWriter<admin::PullProgressEvent>* writer) override;
  grpc::Status ImportImage(grpc::ServerContext* ctx,
                           grpc::ServerReader<admin::ImportImageRequest>* reader,
                           admin::ImportImageResponse* resp) override;

  // The largest archive ImportImage accepts.
  static constexpr uint64_t kMaxImportBytes = uint64_t{64} << 30;

 private:
  images::ImageStore* store_;  // owned by the daemon
  std::string state_dir_;
};

}  // namespace berth::cri
