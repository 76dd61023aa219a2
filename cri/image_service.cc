// runtime.v1.ImageService.
#include "cri/image_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log.h"
#include "cri/grpc_status.h"
#include "nlohmann/json.hpp"

namespace berth::cri {

void FillImage(const images::ImageRecord& rec, v1::Image* out) {
  out->set_id(rec.id.ToString());
  for (const std::string& t : rec.repo_tags) out->add_repo_tags(t);
  for (const std::string& d : rec.repo_digests) out->add_repo_digests(d);
  out->set_size(rec.size);
  out->set_pinned(rec.pinned);
  out->mutable_spec()->set_image(rec.id.ToString());
  nlohmann::json config = nlohmann::json::parse(rec.config_json, nullptr, false);
  std::string user;
  if (config.is_object() && config.contains("config") && config["config"].is_object() &&
      config["config"].contains("User") && config["config"]["User"].is_string()) {
    user = config["config"]["User"].get<std::string>();
  }
  images::ImageUser u = images::ImageUserOf(user);
  if (u.uid) {
    out->mutable_uid()->set_value(*u.uid);
  } else {
    out->set_username(u.username);
  }
}

grpc::Status ImageService::PullImage(grpc::ServerContext*, const v1::PullImageRequest* req,
                                     v1::PullImageResponse* resp) {
  const v1::AuthConfig& a = req->auth();
  absl::StatusOr<images::Credentials> creds = images::CredentialsFromAuthConfig(
      a.username(), a.password(), a.auth(), a.identity_token(), a.registry_token());
  if (!creds.ok()) return ToGrpcStatus(creds.status());
  const absl::Time start = absl::Now();
  absl::StatusOr<images::ImageRecord> rec = store_->Pull(req->image().image(), *creds);
  if (!rec.ok()) return ToGrpcStatus(rec.status());
  log::Info("pulled image", {{"image", req->image().image()},
                             {"id", rec->id.ToString()},
                             {"bytes", rec->size},
                             {"duration_ms", absl::ToDoubleMilliseconds(absl::Now() - start)}});
  resp->set_image_ref(rec->id.ToString());
  return grpc::Status::OK;
}

grpc::Status ImageService::ImageStatus(grpc::ServerContext*, const v1::ImageStatusRequest* req,
                                       v1::ImageStatusResponse* resp) {
  absl::StatusOr<images::ImageRecord> rec = store_->Resolve(req->image().image());
  if (!rec.ok()) {
    // An absent image is an empty answer, not an error: the kubelet asks before pulling.
    if (absl::IsNotFound(rec.status())) return grpc::Status::OK;
    return ToGrpcStatus(rec.status());
  }
  FillImage(*rec, resp->mutable_image());
  if (req->verbose()) {
    nlohmann::json info;
    nlohmann::json chain = nlohmann::json::array();
    for (const Digest& c : rec->chain_ids) chain.push_back(c.ToString());
    info["chainIDs"] = std::move(chain);
    info["manifestDigest"] = rec->manifest_digest.ToString();
    info["manifestMediaType"] = rec->manifest_media_type;
    nlohmann::json config = nlohmann::json::parse(rec->config_json, nullptr, false);
    info["imageSpec"] = config.is_discarded() ? nlohmann::json(rec->config_json) : config;
    (*resp->mutable_info())["info"] = info.dump();
  }
  return grpc::Status::OK;
}

grpc::Status ImageService::ListImages(grpc::ServerContext*, const v1::ListImagesRequest* req,
                                      v1::ListImagesResponse* resp) {
  const std::string& filter = req->filter().image().image();
  if (!filter.empty()) {
    absl::StatusOr<images::ImageRecord> rec = store_->Resolve(filter);
    if (rec.ok()) FillImage(*rec, resp->add_images());
    if (!rec.ok() && !absl::IsNotFound(rec.status())) return ToGrpcStatus(rec.status());
    return grpc::Status::OK;
  }
  absl::StatusOr<std::vector<images::ImageRecord>> all = store_->List();
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (const images::ImageRecord& rec : *all) FillImage(rec, resp->add_images());
  return grpc::Status::OK;
}

grpc::Status ImageService::RemoveImage(grpc::ServerContext*, const v1::RemoveImageRequest* req,
                                       v1::RemoveImageResponse*) {
  absl::Status st = store_->Remove(req->image().image());
  // Removing what is not there succeeds, as the CRI asks (idempotent).
  if (!st.ok() && !absl::IsNotFound(st)) return ToGrpcStatus(st);
  return grpc::Status::OK;
}

grpc::Status ImageService::ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*,
                                       v1::ImageFsInfoResponse* resp) {
  absl::StatusOr<images::FsUsage> u = store_->Usage();
  if (!u.ok()) return ToGrpcStatus(u.status());
  v1::FilesystemUsage* fs = resp->add_image_filesystems();
  fs->set_timestamp(absl::ToUnixNanos(absl::Now()));
  fs->mutable_fs_id()->set_mountpoint(u->mountpoint);
  fs->mutable_used_bytes()->set_value(u->used_bytes);
  fs->mutable_inodes_used()->set_value(u->inodes_used);
  return grpc::Status::OK;
}

BERTH_UNIMPLEMENTED_STREAM_RPC(ImageService, StreamImages)

}  // namespace berth::cri
