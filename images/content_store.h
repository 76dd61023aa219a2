// The content store: immutable blobs (manifests, configs, layers) named by their digest, as
// containerd keeps them. Layout under the root (berthd: /var/lib/berth/content):
//
//   blobs/<alg>/<hex>          committed blobs, mode 0444; only ever created by a rename
//   ingest/<alg>-<hex>/data    the download in progress (appended to, hashed as it grows)
//   ingest/<alg>-<hex>/lock    flock'ed by the one writer of that digest
//   ingest/<alg>-<hex>/ref     JSON: digest, expected size, when the download started
//
// A blob is visible only after its size and digest matched, its data was fsynced, it was
// renamed into blobs/ and blobs/<alg> was fsynced: a committed blob survives a power loss, and
// later steps trust it. Every path is built from a berth::Digest (validated by Digest::Parse),
// never from a name read from disk, so no path can escape the root.
//
// Thread-safe and process-safe: writers of one digest exclude each other with flock, so two
// threads or two processes (a restarted berthd, a berthctl) never write the same ingest. The
// store holds no mutable state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/digest.h"
#include "base/unique_fd.h"

namespace berth::images {

struct BlobInfo {
  Digest digest;
  int64_t size = 0;
  absl::Time modified;
};

struct ContentUsage {
  int64_t bytes = 0;   // sum of the committed blobs' sizes
  int64_t inodes = 0;  // number of committed blobs
};

class ContentStore {
 public:
  // Creates root, root/blobs/{sha256,sha512} and root/ingest as needed (mode 0755).
  static absl::StatusOr<std::unique_ptr<ContentStore>> Open(const std::string& root);

  ContentStore(const ContentStore&) = delete;
  ContentStore& operator=(const ContentStore&) = delete;

  // One download of one digest. Holds the ingest's flock for its lifetime; destroying it without
  // Commit keeps the ingest (Abort(false)) so that the download can be resumed later.
  class Writer {
   public:
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Appends to the ingest file and hashes the bytes. Writing past the expected size is
    // refused with ResourceExhausted and writes nothing (a server sending too much must not
    // fill the disk). After a failed write(2) (ENOSPC, ...) the bytes that did reach the file
    // are accounted for, so the writer stays consistent and the caller can retry or abort.
    absl::Status Write(const void* data, size_t len);
    absl::Status Write(absl::string_view data) { return Write(data.data(), data.size()); }

    // Bytes in the ingest so far: where a resumed download continues (HTTP Range).
    int64_t offset() const { return offset_; }
    const Digest& digest() const { return digest_; }
    int64_t expected_size() const { return expected_size_; }  // -1: unknown
    absl::Time started_at() const { return started_at_; }     // of the first attempt

    // Cuts the ingest back to `size` bytes (<= offset()) and re-hashes what is kept. Reset()
    // restarts from zero, e.g. when the server ignored a Range request.
    absl::Status Truncate(int64_t size);
    absl::Status Reset() { return Truncate(0); }

    // Checks size and digest, fsyncs, renames into blobs/ and fsyncs the directory; returns
    // the blob's path. A size or digest mismatch is DataLoss naming expected and actual, and
    // removes the ingest (a corrupt download leaves nothing behind). Failures before the
    // rename (EIO on fsync, ...) keep the ingest for a later attempt. If only the final fsync of
    // blobs/<alg> fails, the blob is in place (its data was synced) but the error is returned.
    // The writer is finished after Commit, whatever the outcome.
    absl::StatusOr<std::string> Commit();

    // Releases the lock. With `discard`, removes the ingest first; otherwise it stays to be
    // resumed. Idempotent; a no-op after Commit.
    void Abort(bool discard = false);

   private:
    friend class ContentStore;
    Writer(const ContentStore* store, Digest digest, int64_t expected_size);
    absl::Status Rehash(int64_t size);
    void Finish(bool remove_ingest);

    const ContentStore* store_;
    Digest digest_;
    int64_t expected_size_;
    std::string ingest_dir_;
    absl::Time started_at_;
    UniqueFd dir_fd_;   // the ingest directory
    UniqueFd lock_fd_;  // flock'ed while the writer is open
    UniqueFd data_fd_;
    Hasher hasher_;
    int64_t offset_ = 0;
    bool done_ = false;
  };

  // Opens the writer of `digest`. `expected_size` < 0 means unknown (only the digest is then
  // checked, and Write never refuses). If an ingest exists (a crash, an interrupted download),
  // its bytes are re-hashed once and the writer continues at its end; see offset().
  //
  // Returns AlreadyExists when the blob is committed (its size is not compared with
  // `expected_size`: the digest names the content) (also when it got committed while this
  // call waited for the lock): the caller uses the blob. When another writer (thread or
  // process) holds the digest: waits for it with `wait`, otherwise fails with Unavailable.
  // Waiting for a writer held by the calling thread deadlocks.
  absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(const Digest& digest, int64_t expected_size,
                                                     bool wait = true) const;

  // Blob lookups. A path that is not a regular file (a planted symlink, ...) is not a blob.
  bool Has(const Digest& digest) const;
  absl::StatusOr<BlobInfo> Info(const Digest& digest) const;
  // O_RDONLY | O_CLOEXEC | O_NOFOLLOW. NotFound when missing.
  absl::StatusOr<UniqueFd> OpenBlob(const Digest& digest) const;
  // Reads a small blob (manifests, configs) and checks its digest: DataLoss on mismatch,
  // ResourceExhausted when larger than max_size.
  absl::StatusOr<std::string> ReadBlob(const Digest& digest, size_t max_size = 4 << 20) const;
  // Re-hashes a committed blob (in chunks): DataLoss when it no longer matches its name.
  absl::Status Verify(const Digest& digest) const;
  // Removes a blob; OK when it does not exist.
  absl::Status Delete(const Digest& digest) const;

  // Every committed blob. Entries that are not blobs (names that are not digests, symlinks,
  // directories, unknown algorithms) are skipped and counted in `*skipped` when given.
  absl::StatusOr<std::vector<BlobInfo>> List(size_t* skipped = nullptr) const;

  // Bytes and inodes of the committed blobs (ImageFsInfo).
  absl::StatusOr<ContentUsage> Usage() const;

  // Start-up hygiene: removes every ingest that no writer holds and whose last write is older
  // than `older_than` (orphans of a crash). Entries whose names are not digests are left alone.
  // Returns the digests whose ingests were removed.
  absl::StatusOr<std::vector<Digest>> CleanIngests(absl::Duration older_than) const;

  const std::string& root() const { return root_; }
  std::string BlobPath(const Digest& digest) const;
  std::string IngestPath(const Digest& digest) const;  // the ingest directory

 private:
  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  std::string BlobDir(Digest::Algorithm algorithm) const;

  std::string root_;
};

}  // namespace berth::images
