// runtime.v1.ImageService: arrives with the image-service issue.
#include "cri/image_service.h"
#include "cri/grpc_status.h"

namespace berth::cri {

BERTH_UNIMPLEMENTED_RPC(ImageService, ListImages)
BERTH_UNIMPLEMENTED_RPC(ImageService, ImageStatus)
BERTH_UNIMPLEMENTED_RPC(ImageService, PullImage)
BERTH_UNIMPLEMENTED_RPC(ImageService, RemoveImage)
BERTH_UNIMPLEMENTED_RPC(ImageService, ImageFsInfo)
BERTH_UNIMPLEMENTED_STREAM_RPC(ImageService, StreamImages)

}  // namespace berth::cri
