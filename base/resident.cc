#include "base/resident.h"

#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace berth {

namespace {

struct Walk {
  TrimOptions options;
  uintptr_t page = 4096;
  size_t advised = 0;
};

// True when the object was linked with text relocations: its read-only segments were written
// by the loader.
bool HasTextRelocations(const struct dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_DYNAMIC) continue;
    const auto* dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
    for (; dyn->d_tag != DT_NULL; ++dyn) {
      if (dyn->d_tag == DT_TEXTREL) return true;
      if (dyn->d_tag == DT_FLAGS && (dyn->d_un.d_val & DF_TEXTREL) != 0) return true;
    }
  }
  return false;
}

int TrimObject(struct dl_phdr_info* info, size_t, void* data) {
  auto* walk = static_cast<Walk*>(data);
  // The vDSO is the kernel's, mapped specially.
  if (info->dlpi_name != nullptr && std::strncmp(info->dlpi_name, "linux-vdso", 10) == 0) {
    return 0;
  }
  if (HasTextRelocations(info)) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0 || ph.p_memsz == 0) continue;
    // Rounded inwards: a page the segment shares with its neighbour belongs to the
    // neighbour's mapping, which may be a written one.
    const uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    const uintptr_t start = (begin + walk->page - 1) & ~(walk->page - 1);
    const uintptr_t end = (begin + ph.p_memsz) & ~(walk->page - 1);
    if (end <= start) continue;
    void* addr = reinterpret_cast<void*>(start);
    if (walk->options.random_access) (void)::madvise(addr, end - start, MADV_RANDOM);
    if (::madvise(addr, end - start, MADV_DONTNEED) == 0) walk->advised += end - start;
  }
  return 0;
}

}  // namespace

size_t TrimResidentCode(const TrimOptions& options) {
  Walk walk;
  walk.options = options;
  long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) walk.page = static_cast<uintptr_t>(page);
  ::dl_iterate_phdr(TrimObject, &walk);
  return walk.advised;
}

}  // namespace berth
