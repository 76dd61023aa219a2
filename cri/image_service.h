// runtime.v1.ImageService over the node's image store.
#pragma once

#include "cri/runtime_service.h"
#include "images/image_store.h"

namespace berth::cri {

class ImageService final : public v1::ImageService::Service {
 public:
  explicit ImageService(images::ImageStore* store) : store_(store) {}

  BERTH_UNARY_RPC(ListImages);
  BERTH_UNARY_RPC(ImageStatus);
  BERTH_UNARY_RPC(PullImage);
  BERTH_UNARY_RPC(RemoveImage);
  BERTH_UNARY_RPC(ImageFsInfo);
  BERTH_STREAM_RPC(StreamImages);

 private:
  images::ImageStore* store_;  // owned by the daemon
};

// The CRI view of an image record.
void FillImage(const images::ImageRecord& rec, v1::Image* out);

}  // namespace berth::cri
