// runtime.v1.ImageService. Every RPC answers UNIMPLEMENTED, naming itself, until the
// image-service issue lands.
#pragma once

#include "cri/runtime_service.h"

namespace berth::cri {

class ImageService final : public v1::ImageService::Service {
 public:
  BERTH_UNARY_RPC(ListImages);
  BERTH_UNARY_RPC(ImageStatus);
  BERTH_UNARY_RPC(PullImage);
  BERTH_UNARY_RPC(RemoveImage);
  BERTH_UNARY_RPC(ImageFsInfo);
  BERTH_STREAM_RPC(StreamImages);
};

}  // namespace berth::cri
