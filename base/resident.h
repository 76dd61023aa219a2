// Unmapping code a long-running process ran once and will not run again soon.
//
// A daemon's start-up runs a lot of code only once (library initialisers, plugin registries,
// configuration parsing, recovery); the kernel keeps every page it faulted in mapped, and on a
// code fault it maps the neighbouring page-cache pages too (fault-around, whole large folios).
// Unmapping the loaded objects' read-only segments drops all that from the process; the pages
// stay in the page cache, so what runs next comes back as a minor fault, and what never runs
// again becomes reclaimable instead of being held mapped.
#ifndef BERTH_BASE_RESIDENT_H_
#define BERTH_BASE_RESIDENT_H_

#include <cstddef>

namespace berth {

struct TrimOptions {
  // Also turn fault-around off for those segments (MADV_RANDOM): later faults map single
  // pages. For a process whose idle loop touches little code (the pod monitor); a process
  // that serves requests faults more often with it.
  bool random_access = false;
};

// MADV_DONTNEED on every read-only PT_LOAD segment of every loaded object (the executable, its
// shared libraries, whatever was dlopen'ed; not the vDSO). Segments that are or were ever
// writable are never touched: RELRO and data live in writable segments, and an object with
// text relocations is skipped, since MADV_DONTNEED would bring back the file's unrelocated
// bytes. Pages at a segment's ends that it may share with a neighbour are left alone. Runs
// under the dynamic loader's lock (dl_iterate_phdr), so no object is (un)loaded meanwhile.
// Returns the bytes of address space advised.
size_t TrimResidentCode(const TrimOptions& options = {});

}  // namespace berth

#endif  // BERTH_BASE_RESIDENT_H_
