#include "images/puller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "images/unpack.h"

namespace berth::images {

namespace {

constexpr size_t kReadChunk = 1 << 20;        // reading local blobs and ingests
constexpr uint64_t kProgressEvery = 1 << 20;  // progress calls while downloading

using State = PullProgress::State;

std::string LayerName(size_t index, size_t count, const Descriptor& layer) {
  return absl::StrCat("layer ", index + 1, " of ", count, " (", layer.digest.ToString(), ")");
}

// Reads exactly `size` bytes of `fd` from offset 0 into `sink`, in chunks.
absl::Status FeedFile(int fd, int64_t size, const std::string& name,
                      const std::function<absl::Status(const char*, size_t)>& sink) {
  std::unique_ptr<char[]> buf(new char[kReadChunk]);
  int64_t off = 0;
  while (off < size) {
    size_t want = static_cast<size_t>(std::min<int64_t>(size - off, kReadChunk));
    ssize_t n = ::pread(fd, buf.get(), want, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoError(absl::StrCat("read ", name));
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat(name, " ends at ", off, " bytes, ", size, " were expected"));
    }
    RETURN_IF_ERROR(sink(buf.get(), static_cast<size_t>(n)));
    off += n;
  }
  return absl::OkStatus();
}

}  // namespace

const char* PullStateName(PullProgress::State state) {
  switch (state) {
    case State::kWaiting: return "waiting";
    case State::kDownloading: return "downloading";
    case State::kUnpacking: return "unpacking";
    case State::kDone: return "done";
    case State::kCached: return "cached";
  }
  return "unknown";
}

Puller::Puller(RegistryClient* registry, ContentStore* content, SnapshotStore* snapshots,
               PullOptions options)
    : registry_(registry), content_(content), snapshots_(snapshots), options_(std::move(options)) {
  if (options_.max_parallel_layers < 1) options_.max_parallel_layers = 1;
}

absl::Status Puller::SingleFlight(const std::string& key, const std::function<absl::Status()>& fn) {
  for (;;) {
    std::shared_future<absl::Status> other;
    std::promise<absl::Status> mine;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = inflight_.find(key);
      if (it != inflight_.end()) {
        other = it->second;
      } else {
        inflight_.emplace(key, mine.get_future().share());
      }
    }
    if (other.valid()) {
      // Someone else does it; on their failure try again (maybe leading this time). Each
      // caller leads at most once, so this ends.
      if (other.get().ok()) return absl::OkStatus();
      continue;
    }
    absl::Status status = fn();
    {
      std::lock_guard<std::mutex> l(mu_);
      inflight_.erase(key);
    }
    mine.set_value(status);
    return status;
  }
}

absl::Status Puller::StoreManifest(const FetchedManifest& m) {
  auto w = content_->OpenWriter(m.digest, static_cast<int64_t>(m.body.size()));
  if (absl::IsAlreadyExists(w.status())) return absl::OkStatus();
  if (!w.ok()) return w.status();
  absl::Status s = (*w)->offset() > 0 ? (*w)->Reset() : absl::OkStatus();
  if (s.ok()) s = (*w)->Write(m.body);
  if (s.ok()) s = (*w)->Commit().status();
  if (!s.ok()) (*w)->Abort(true);
  return Annotate(s, absl::StrCat("storing manifest ", m.digest.ToString()));
}

absl::StatusOr<std::string> Puller::FetchConfig(const ImageSource& source, const Descriptor& desc) {
  if (desc.size > static_cast<int64_t>(kMaxConfigSize)) {
    return absl::InvalidArgumentError(absl::StrCat("image config ", desc.digest.ToString(), " is ",
                                                   desc.size, " bytes, more than the limit ",
                                                   kMaxConfigSize));
  }
  RETURN_IF_ERROR(SingleFlight("blob:" + desc.digest.ToString(), [&]() -> absl::Status {
    auto w = content_->OpenWriter(desc.digest, desc.size);
    if (absl::IsAlreadyExists(w.status())) return absl::OkStatus();
    if (!w.ok()) return w.status();
    ContentStore::Writer& writer = **w;
    // A small blob: fetched whole from 0 (a partial ingest is not worth resuming).
    absl::Status s = writer.offset() > 0 ? writer.Reset() : absl::OkStatus();
    absl::Status reset_status;
    if (s.ok()) {
      s = source.blob(
          desc.digest, 0,
          [&](const char* p, size_t n) -> absl::Status {
            RETURN_IF_ERROR(reset_status);
            return writer.Write(p, n);
          },
          [&] { reset_status = writer.Reset(); });
    }
    if (s.ok()) s = reset_status;
    if (s.ok()) s = writer.Commit().status();
    if (!s.ok()) writer.Abort(true);
    return Annotate(s, absl::StrCat("fetching image config ", desc.digest.ToString()));
  }));
  return content_->ReadBlob(desc.digest, kMaxConfigSize);
}

absl::Status Puller::EnsureLayer(const ImageSource& source, const Descriptor& layer,
                                 const Digest& diff_id, const Digest& chain_id,
                                 const std::function<bool()>& cancelled,
                                 const std::function<void(PullProgress)>& report, bool* cached) {
  *cached = false;
  return SingleFlight("snapshot:" + chain_id.ToString(), [&]() -> absl::Status {
    if (snapshots_->Has(chain_id)) {
      *cached = true;
      return absl::OkStatus();
    }
    return FetchAndUnpack(source, layer, diff_id, chain_id, cancelled, report);
  });
}

absl::Status Puller::FetchAndUnpack(const ImageSource& source, const Descriptor& layer,
                                    const Digest& diff_id, const Digest& chain_id,
                                    const std::function<bool()>& cancelled,
                                    const std::function<void(PullProgress)>& report) {
  ASSIGN_OR_RETURN(Compression compression, LayerCompression(layer.media_type));
  const uint64_t total = layer.size > 0 ? static_cast<uint64_t>(layer.size) : 0;

  // The extraction directory and its unpacker; restarted when the download starts over.
  std::string tmp;
  std::unique_ptr<LayerUnpacker> unpacker;
  auto drop_tmp = [&] {
    if (unpacker) unpacker->Cancel();
    unpacker.reset();
    if (!tmp.empty()) {
      absl::Status s = snapshots_->RemoveTmp(tmp);
      if (!s.ok()) log::Warn("removing a snapshot tmp dir", {{"error", s.ToString()}});
      tmp.clear();
    }
  };
  auto start_unpacker = [&]() -> absl::Status {
    drop_tmp();
    ASSIGN_OR_RETURN(tmp, snapshots_->NewTmp());
    ASSIGN_OR_RETURN(unpacker, LayerUnpacker::Create(tmp, compression));
    return absl::OkStatus();
  };
  // Finishes the extraction, checks the diff_id and renames the snapshot into place.
  auto finish_unpack = [&](const absl::Status& unpack_status) -> absl::Status {
    RETURN_IF_ERROR(unpack_status);
    absl::StatusOr<UnpackResult> result = unpacker->Finish();
    if (!result.ok()) return result.status();
    if (result->diff_id != diff_id) {
      return absl::DataLossError(absl::StrCat("diff_id ", result->diff_id.ToString(),
                                              " does not match the image config's ",
                                              diff_id.ToString()));
    }
    RETURN_IF_ERROR(snapshots_->Commit(tmp, chain_id));
    tmp.clear();  // now the snapshot's
    return absl::OkStatus();
  };

  absl::Status status = start_unpacker();
  if (!status.ok()) {
    drop_tmp();
    return status;
  }
  auto writer_or = content_->OpenWriter(layer.digest, layer.size);
  if (absl::IsAlreadyExists(writer_or.status())) {
    // The blob is here (a removed snapshot, or another image's download of the same blob):
    // unpack it from the store, no download.
    report({layer.digest, total, total, State::kUnpacking});
    auto fd = content_->OpenBlob(layer.digest);
    status = fd.status();
    if (status.ok()) {
      struct stat st;
      if (::fstat(fd->get(), &st) != 0) {
        status = LastErrnoError("stat blob");
      } else {
        absl::Status unpack_status =
            FeedFile(fd->get(), st.st_size, content_->BlobPath(layer.digest),
                     [&](const char* p, size_t n) -> absl::Status {
                       if (cancelled()) return absl::CancelledError("pull cancelled");
                       return unpacker->Write(p, n);
                     });
        status = finish_unpack(unpack_status);
      }
    }
    drop_tmp();
    return status;
  }
  if (!writer_or.ok()) {
    drop_tmp();
    return writer_or.status();
  }
  ContentStore::Writer& writer = **writer_or;

  // Resume: the unpacker must see the whole stream, so the bytes of a partial ingest (left by
  // an interrupted berthd) are fed to it from the ingest file first; the download continues
  // where the ingest ends. If that fails, start over from 0.
  if (writer.offset() > 0) {
    std::string data = content_->IngestPath(layer.digest) + "/data";
    UniqueFd fd(::open(data.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    absl::Status s = fd ? FeedFile(fd.get(), writer.offset(), data,
                                   [&](const char* p, size_t n) { return unpacker->Write(p, n); })
                        : LastErrnoError(absl::StrCat("open ", data));
    if (!s.ok()) {
      log::Warn("partial download not resumable, starting over",
                {{"blob", layer.digest.ToString()}, {"error", s.ToString()}});
      status = writer.Reset();
      if (status.ok()) status = start_unpacker();
      if (!status.ok()) {
        writer.Abort(true);
        drop_tmp();
        return status;
      }
    }
  }

  // ONE pass: each chunk goes to the writer (compressed digest and size) and to the unpacker
  // (decompression, diff_id, extraction). After an unpacker error the writer alone continues, so
  // that a corrupt blob is reported as such (DataLoss on its digest) rather than as whatever
  // the decompressor or tar reader made of it.
  absl::Status unpack_status;
  absl::Status reset_status;
  uint64_t done = static_cast<uint64_t>(writer.offset());
  uint64_t last_report = done;
  report({layer.digest, done, total, State::kDownloading});
  status = source.blob(
      layer.digest, writer.offset(),
      [&](const char* p, size_t n) -> absl::Status {
        RETURN_IF_ERROR(reset_status);
        if (cancelled()) return absl::CancelledError("pull cancelled");
        RETURN_IF_ERROR(writer.Write(p, n));
        if (unpack_status.ok()) unpack_status = unpacker->Write(p, n);
        done += n;
        if (done - last_report >= kProgressEvery) {
          last_report = done;
          report({layer.digest, done, total, State::kDownloading});
        }
        return absl::OkStatus();
      },
      [&] {
        // The server ignored the Range: both start over.
        reset_status = writer.Reset();
        if (reset_status.ok()) reset_status = start_unpacker();
        unpack_status = absl::OkStatus();
        done = last_report = 0;
      });
  if (status.ok()) status = reset_status;
  if (!status.ok()) {
    writer.Abort(true);
    drop_tmp();
    return status;
  }
  report({layer.digest, done, total, State::kUnpacking});
  absl::StatusOr<std::string> committed = writer.Commit();
  if (!committed.ok()) {
    writer.Abort(true);
    drop_tmp();
    return committed.status();  // DataLoss naming expected and actual digest/size
  }
  status = finish_unpack(unpack_status);
  if (!status.ok()) {
    // A blob whose layer could not become a snapshot is not kept either.
    absl::Status d = content_->Delete(layer.digest);
    if (!d.ok()) log::Warn("removing a blob", {{"error", d.ToString()}});
  }
  drop_tmp();
  return status;
}

absl::StatusOr<PulledImage> Puller::Pull(const Reference& ref, const Credentials& creds,
                                         const std::function<void(const PullProgress&)>& progress) {
  ASSIGN_OR_RETURN(FetchedManifest top, registry_->FetchManifest(ref, creds));
  ImageSource source;
  source.name = ref.String();
  source.manifest = [&](const Descriptor& desc) {
    return registry_->FetchManifestByDigest(ref, desc.digest, creds);
  };
  source.blob = [&](const Digest& digest, int64_t offset, const BlobSink& sink,
                    const std::function<void()>& reset) {
    return registry_->FetchBlob(ref, digest, offset, sink, reset, creds);
  };
  ASSIGN_OR_RETURN(PulledImage out, PullFrom(source, top, progress));
  out.ref = ref;
  return out;
}

absl::StatusOr<PulledImage> Puller::PullFrom(
    const ImageSource& source, const FetchedManifest& top,
    const std::function<void(const PullProgress&)>& progress, std::vector<Digest>* chain_ids) {
  const std::string& name = source.name;
  PulledImage out;
  out.manifest_digest = top.digest;
  out.manifest_media_type = top.media_type;
  RETURN_IF_ERROR(StoreManifest(top));
  FetchedManifest image = top;
  if (top.kind == MediaKind::kIndex) {
    ASSIGN_OR_RETURN(Index index, ParseIndex(top.body));
    ASSIGN_OR_RETURN(Descriptor desc, SelectPlatform(index, options_.platform));
    ASSIGN_OR_RETURN(image, source.manifest(desc));
    if (image.kind != MediaKind::kManifest) {
      return absl::UnimplementedError(
          absl::StrCat("image ", name, ": the index entry for ", options_.platform.String(), " (",
                       desc.digest.ToString(), ") is not an image manifest but ", image.media_type,
                       " (nested indexes are not supported)"));
    }
    RETURN_IF_ERROR(StoreManifest(image));
    out.size += top.body.size();
  } else if (top.kind != MediaKind::kManifest) {
    return absl::InvalidArgumentError(
        absl::StrCat("image ", name, ": not a manifest or index: ", top.media_type));
  }
  out.image_manifest_digest = image.digest;
  out.size += image.body.size();
  ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(image.body));
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const Descriptor& l = manifest.layers[i];
    if (IsForeignLayer(l.media_type) && !l.urls.empty()) {
      return absl::UnimplementedError(absl::StrCat(
          "image ", name, ": ", LayerName(i, manifest.layers.size(), l),
          " is a non-distributable layer (", l.media_type, ") to be fetched from ", l.urls[0],
          ": pulling non-distributable layers from their urls is not supported"));
    }
    RETURN_IF_ERROR(
        Annotate(LayerCompression(l.media_type).status(), absl::StrCat("image ", name)));
  }

  out.config_digest = manifest.config.digest;
  ASSIGN_OR_RETURN(out.config_json, FetchConfig(source, manifest.config));
  ASSIGN_OR_RETURN(out.config, ParseImageConfig(out.config_json));
  RETURN_IF_ERROR(CheckConfigMatchesManifest(manifest, out.config));
  out.size += out.config_json.size();
  out.diff_ids = out.config.diff_ids;
  out.chain_ids = ChainIds(out.diff_ids);
  if (chain_ids != nullptr) *chain_ids = out.chain_ids;
  for (const Descriptor& l : manifest.layers) {
    out.layer_digests.push_back(l.digest);
    out.size += static_cast<uint64_t>(std::max<int64_t>(l.size, 0));
  }

  // Layers, up to max_parallel_layers at once. The first failure cancels the others.
  const size_t n = manifest.layers.size();
  std::mutex progress_mu;
  auto report = [&](const PullProgress& p) {
    if (!progress) return;
    std::lock_guard<std::mutex> l(progress_mu);
    progress(p);
  };
  for (const Descriptor& l : manifest.layers) {
    report({l.digest, 0, static_cast<uint64_t>(std::max<int64_t>(l.size, 0)), State::kWaiting});
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<absl::Status> statuses(n);
  auto cancelled = [&] { return failed.load(); };
  auto work = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      if (failed) {
        statuses[i] = absl::CancelledError("pull cancelled");
        continue;
      }
      const Descriptor& l = manifest.layers[i];
      bool cached = false;
      absl::Status s =
          EnsureLayer(source, l, out.diff_ids[i], out.chain_ids[i], cancelled, report, &cached);
      uint64_t total = static_cast<uint64_t>(std::max<int64_t>(l.size, 0));
      if (s.ok()) {
        report({l.digest, total, total, cached ? State::kCached : State::kDone});
      } else {
        statuses[i] = Annotate(s, absl::StrCat("image ", name, ": ", LayerName(i, n, l)));
        failed = true;
      }
    }
  };
  size_t threads = std::min<size_t>(n, static_cast<size_t>(options_.max_parallel_layers));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  if (threads > 0) work();
  for (std::thread& t : pool) t.join();
  // The first real error (not a cancellation it caused), else the first error.
  const absl::Status* first = nullptr;
  for (const absl::Status& s : statuses) {
    if (s.ok()) continue;
    if (!absl::IsCancelled(s)) return s;
    if (first == nullptr) first = &s;
  }
  if (first != nullptr) return *first;
  return out;
}

}  // namespace berth::images
