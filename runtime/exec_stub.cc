#include "runtime/exec_stub.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"

namespace berth::runtime {

absl::StatusOr<UniqueFd> SealedExecStub() {
  UniqueFd fd(::memfd_create("berth-exec-stub", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return LastErrnoError("memfd_create for the exec stub");
  size_t done = 0;
  while (done < kExecStubSize) {
    ssize_t n = ::write(fd.get(), kExecStub + done, kExecStubSize - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return LastErrnoError("write the exec stub");
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), 0555) != 0) return LastErrnoError("chmod the exec stub");
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) !=
      0) {
    return LastErrnoError("seal the exec stub");
  }
  return fd;
}

}  // namespace berth::runtime
