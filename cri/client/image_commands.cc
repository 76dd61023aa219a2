// berthctl's image commands: pull, images, inspecti, rmi, imagefsinfo (CRI ImageService) and
// image import (berth's admin service).
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "cri/client/commands.h"
#include "cri/client/connection.h"

namespace berth::cri::client {

namespace {

namespace v1 = ::runtime::v1;
namespace admin = ::berth::admin::v1;

std::string StripSha(absl::string_view s) {
  absl::ConsumePrefix(&s, "sha256:");
  return std::string(s);
}

std::string Truncate(const std::string& s, size_t n) {
  return s.size() > n ? s.substr(0, n) : s;
}

// "1.5 MB": sizes in progress lines.
std::string SpacedSize(uint64_t bytes) {
  std::string h = HumanSize(bytes);
  size_t unit = h.find_first_not_of("0123456789.e+-");
  return unit == std::string::npos ? h : absl::StrCat(h.substr(0, unit), " ", h.substr(unit));
}

std::string ShortDigest(const std::string& digest) {
  // "sha256:abcdef012345…"
  size_t colon = digest.find(':');
  if (colon == std::string::npos || digest.size() <= colon + 13) return digest;
  return digest.substr(0, colon + 13) + "\u2026";
}

absl::StatusOr<v1::Image> StatusOf(Connection& conn, const std::string& image, bool verbose,
                                   std::map<std::string, std::string>* info = nullptr) {
  v1::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  req.set_verbose(verbose);
  v1::ImageStatusResponse resp;
  auto ctx = conn.NewContext();
  absl::Status st = conn.Check(conn.image().ImageStatus(ctx.get(), req, &resp), "ImageStatus");
  if (!st.ok()) return st;
  if (!resp.has_image()) {
    return absl::NotFoundError(absl::StrCat("image \"", image, "\" not found"));
  }
  if (info != nullptr) info->insert(resp.info().begin(), resp.info().end());
  return resp.image();
}

// ---- pull progress ------------------------------------------------------------------------

struct LayerState {
  std::string digest, state;
  uint64_t done = 0, total = 0;
  absl::Time first_seen, started;  // started: first downloading event
  uint64_t start_bytes = 0;
  bool reported = false;  // the "done" line was printed (not a terminal)
};

class ProgressView {
 public:
  ProgressView(std::ostream& err, bool terminal) : err_(err), terminal_(terminal) {}

  void Update(const admin::PullProgressEvent& e) {
    if (e.layer_digest().empty()) return;
    auto [it, inserted] = index_.emplace(e.layer_digest(), layers_.size());
    if (inserted) {
      layers_.push_back(
          LayerState{e.layer_digest(), "", 0, 0, absl::Now(), absl::InfinitePast(), 0, false});
    }
    LayerState& l = layers_[it->second];
    if (e.state() == "downloading" && l.started == absl::InfinitePast()) {
      l.started = absl::Now();
      l.start_bytes = e.done();
    }
    l.state = e.state();
    l.done = e.done();
    l.total = e.total();
    if (terminal_) {
      absl::Time now = absl::Now();
      bool final = l.state == "done" || l.state == "cached";
      if (final || now - last_draw_ >= absl::Milliseconds(100)) {
        Draw();
        last_draw_ = now;
      }
    } else if ((l.state == "done" || l.state == "cached") && !l.reported) {
      l.reported = true;
      err_ << "layer " << ShortDigest(l.digest) << " " << l.state << " " << SpacedSize(l.total)
           << "\n";
      err_.flush();
    }
  }

  void Finish() {
    if (terminal_ && !layers_.empty()) Draw();
  }

 private:
  void Draw() {
    std::string s;
    if (drawn_ > 0) absl::StrAppend(&s, "\x1b[", drawn_, "A");  // back to the first line
    const absl::Time now = absl::Now();
    for (const LayerState& l : layers_) {
      std::string bar;
      const int width = 24;
      int filled =
          l.total > 0
              ? static_cast<int>(static_cast<double>(l.done) / static_cast<double>(l.total) * width)
              : 0;
      filled = std::clamp(filled, 0, width);
      bar = absl::StrCat(
          "[", std::string(static_cast<size_t>(filled), '='), filled < width ? ">" : "",
          std::string(static_cast<size_t>(std::max(width - filled - 1, 0)), ' '), "]");
      std::string rate, eta;
      if (l.state == "downloading" && l.started != absl::InfinitePast()) {
        double secs = absl::ToDoubleSeconds(now - l.started);
        if (secs > 0.2 && l.done > l.start_bytes) {
          double bps = static_cast<double>(l.done - l.start_bytes) / secs;
          rate = absl::StrCat(SpacedSize(static_cast<uint64_t>(bps)), "/s");
          if (l.total > l.done && bps > 0) {
            eta = absl::StrCat("ETA ", absl::FormatDuration(absl::Seconds(static_cast<int64_t>(
                                           static_cast<double>(l.total - l.done) / bps + 0.999))));
          }
        }
      }
      absl::StrAppend(&s, "\x1b[2K", ShortDigest(l.digest), "  ", absl::StrFormat("%-11s", l.state),
                      " ", bar, " ", SpacedSize(l.done), " / ", SpacedSize(l.total),
                      rate.empty() ? "" : "  ", rate, eta.empty() ? "" : "  ", eta, "\n");
    }
    drawn_ = layers_.size();
    err_ << s;
    err_.flush();
  }

  std::ostream& err_;
  bool terminal_;
  std::vector<LayerState> layers_;
  std::map<std::string, size_t> index_;
  size_t drawn_ = 0;
  absl::Time last_draw_ = absl::InfinitePast();
};

// A "pulling IMAGE... 3s" line on a terminal while a plain CRI pull runs.
class Spinner {
 public:
  Spinner(std::ostream& err, bool enabled, std::string what) : err_(err) {
    if (!enabled) return;
    thread_ = std::thread([this, what = std::move(what)] {
      static const char kFrames[] = "|/-\\";
      const absl::Time start = absl::Now();
      for (int i = 0; !stop_.load(); ++i) {
        err_ << "\r\x1b[2K" << kFrames[i % 4] << " pulling " << what << " "
             << absl::FormatDuration(absl::Seconds(absl::ToInt64Seconds(absl::Now() - start)))
             << std::flush;
        for (int j = 0; j < 10 && !stop_.load(); ++j) absl::SleepFor(absl::Milliseconds(10));
      }
      err_ << "\r\x1b[2K" << std::flush;
    });
  }
  ~Spinner() { Stop(); }
  // Stops and clears the line.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::ostream& err_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

bool AdminMissing(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
         (st.error_message().empty() || absl::StrContains(st.error_message(), "unknown service") ||
          absl::StrContains(st.error_message(), "unknown method"));
}

// ---- import -------------------------------------------------------------------------------

constexpr size_t kChunk = 1 << 20;

class ChunkSender {
 public:
  explicit ChunkSender(grpc::ClientWriter<admin::ImportImageRequest>* w) : w_(w) {}
  bool Add(const char* p, size_t n) {
    buf_.append(p, n);
    return buf_.size() >= kChunk ? Flush() : true;
  }
  bool Flush() {
    if (broken_) return false;
    if (buf_.empty()) return true;
    admin::ImportImageRequest req;
    req.set_chunk(std::move(buf_));
    buf_.clear();
    if (!w_->Write(req)) broken_ = true;  // the server ended the call: Finish() says why
    return !broken_;
  }
  bool broken() const { return broken_; }

 private:
  grpc::ClientWriter<admin::ImportImageRequest>* w_;
  std::string buf_;
  bool broken_ = false;
};

la_ssize_t ArchiveWrite(archive*, void* client, const void* buf, size_t n) {
  auto* sender = static_cast<ChunkSender*>(client);
  if (!sender->Add(static_cast<const char*>(buf), n)) return -1;
  return static_cast<la_ssize_t>(n);
}

// Reads `path` in chunks into `sink`; false (with `*error`) when reading fails or the sink
// refuses.
bool SendFile(const std::string& path, const std::function<bool(const char*, size_t)>& sink,
              std::string* error) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    *error = absl::StrCat("open ", path, ": ", berth::ErrnoString(errno));
    return false;
  }
  std::unique_ptr<char[]> buf(new char[kChunk]);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.get(), kChunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = absl::StrCat("read ", path, ": ", berth::ErrnoString(errno));
      return false;
    }
    if (n == 0) return true;
    if (!sink(buf.get(), static_cast<size_t>(n))) return false;
  }
}

// Tars the OCI layout directory `dir` into the stream (uncompressed, pax).
bool SendLayoutDir(const std::string& dir, ChunkSender* sender, std::string* error) {
  namespace fs = std::filesystem;
  std::unique_ptr<archive, int (*)(archive*)> a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), sender, nullptr, ArchiveWrite, nullptr) != ARCHIVE_OK) {
    *error = archive_error_string(a.get());
    return false;
  }
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) {
    *error = absl::StrCat("reading ", dir, ": ", ec.message());
    return false;
  }
  std::sort(files.begin(), files.end());  // a stable order (the importer reads any order)
  for (const fs::path& f : files) {
    struct stat st;
    if (::stat(f.c_str(), &st) != 0) {
      *error = absl::StrCat("stat ", f.string(), ": ", berth::ErrnoString(errno));
      return false;
    }
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(),
                                                               archive_entry_free);
    archive_entry_set_pathname(e.get(), fs::relative(f, dir).c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), st.st_size);
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK) {
      *error = absl::StrCat("archiving ", f.string(), ": ", archive_error_string(a.get()));
      return false;
    }
    bool ok = SendFile(
        f.string(),
        [&](const char* p, size_t n) {
          return archive_write_data(a.get(), p, n) == static_cast<la_ssize_t>(n);
        },
        error);
    if (!ok) {
      if (error->empty()) *error = archive_error_string(a.get());
      return false;
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    *error = archive_error_string(a.get());
    return false;
  }
  return sender->Flush();
}

}  // namespace

std::string HumanSize(uint64_t bytes) {
  // go-units HumanSizeWithPrecision(size, 3), as crictl prints sizes.
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  double size = static_cast<double>(bytes);
  size_t i = 0;
  while (size >= 1000.0 && i + 1 < sizeof kUnits / sizeof kUnits[0]) {
    size /= 1000.0;
    ++i;
  }
  char buf[64];
  (void)std::snprintf(buf, sizeof buf, "%.*g%s", 3, size, kUnits[i]);
  return buf;
}

int CmdPull(const GlobalOptions& opts, const PullFlags& flags, std::ostream& out,
            std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  v1::PullImageRequest req;
  req.mutable_image()->set_image(flags.image);
  if (!flags.creds.empty()) {
    size_t colon = flags.creds.find(':');
    if (colon == std::string::npos) {
      return PrintError(err, absl::InvalidArgumentError("--creds wants USERNAME:PASSWORD"));
    }
    req.mutable_auth()->set_username(flags.creds.substr(0, colon));
    req.mutable_auth()->set_password(flags.creds.substr(colon + 1));
  }
  if (!flags.auth.empty()) req.mutable_auth()->set_auth(flags.auth);

  // berthd: the admin service's pull, with layer progress.
  std::string image_ref;
  bool fallback = false;
  {
    admin::PullWithProgressRequest preq;
    *preq.mutable_pull() = req;
    auto ctx = Connection::NewLongContext(flags.pull_timeout);
    std::unique_ptr<grpc::ClientReader<admin::PullProgressEvent>> reader =
        conn->admin().PullWithProgress(ctx.get(), preq);
    ProgressView view(err, flags.terminal);
    admin::PullProgressEvent e;
    bool any = false;
    while (reader->Read(&e)) {
      any = true;
      if (!e.image_ref().empty()) image_ref = e.image_ref();
      view.Update(e);
    }
    grpc::Status st = reader->Finish();
    view.Finish();
    if (!any && AdminMissing(st)) {
      fallback = true;
    } else if (!st.ok()) {
      return PrintError(err, conn->Check(st, "PullImage"));
    }
  }
  if (fallback) {
    // Another runtime: the plain CRI call (no progress in the CRI).
    Spinner spin(err, flags.terminal, flags.image);
    v1::PullImageResponse resp;
    auto ctx = Connection::NewLongContext(flags.pull_timeout);
    absl::Status st = conn->Check(conn->image().PullImage(ctx.get(), req, &resp), "PullImage");
    spin.Stop();
    if (!st.ok()) return PrintError(err, st);
    image_ref = resp.image_ref();
  }
  out << "Image is up to date for " << image_ref << "\n";
  return 0;
}

int CmdImages(const GlobalOptions& opts, const ImagesFlags& flags, std::ostream& out,
              std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  v1::ListImagesRequest req;
  if (!flags.image.empty()) req.mutable_filter()->mutable_image()->set_image(flags.image);
  v1::ListImagesResponse resp;
  auto ctx = conn->NewContext();
  absl::Status st = conn->Check(conn->image().ListImages(ctx.get(), req, &resp), "ListImages");
  if (!st.ok()) return PrintError(err, st);
  std::vector<const v1::Image*> images;
  for (const v1::Image& i : resp.images()) images.push_back(&i);
  // crictl's order: by the first tag, untagged last.
  std::stable_sort(images.begin(), images.end(), [](const v1::Image* a, const v1::Image* b) {
    if (a->repo_tags().empty() != b->repo_tags().empty()) return b->repo_tags().empty();
    if (a->repo_tags().empty()) return false;
    return a->repo_tags(0) < b->repo_tags(0);
  });
  if (flags.quiet) {
    for (const v1::Image* i : images) out << i->id() << "\n";
    return 0;
  }
  if (opts.output != OutputFormat::kTable) {
    out << RenderStructured(MessageToJson(resp), opts.output);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  if (flags.digests) {
    rows.push_back({"IMAGE", "TAG", "DIGEST", "IMAGE ID", "SIZE"});
  } else {
    rows.push_back({"IMAGE", "TAG", "IMAGE ID", "SIZE"});
  }
  for (const v1::Image* i : images) {
    std::string digest_name = "<none>", digest = "<none>";
    if (!i->repo_digests().empty()) {
      const std::string& rd = i->repo_digests(0);
      size_t at = rd.find('@');
      if (at != std::string::npos) {
        digest_name = rd.substr(0, at);
        digest = Truncate(StripSha(rd.substr(at + 1)), 13);
      }
    }
    std::vector<std::pair<std::string, std::string>> pairs;
    if (i->repo_tags().empty()) pairs.emplace_back(digest_name, "<none>");
    for (const std::string& t : i->repo_tags()) {
      size_t colon = t.rfind(':');
      if (colon == std::string::npos || t.find('/', colon) != std::string::npos) {
        pairs.emplace_back(t, "<none>");
      } else {
        pairs.emplace_back(t.substr(0, colon), t.substr(colon + 1));
      }
    }
    for (const auto& [name, tag] : pairs) {
      std::vector<std::string> row = {name, tag};
      if (flags.digests) row.push_back(digest);
      row.push_back(Truncate(StripSha(i->id()), 13));
      row.push_back(HumanSize(i->size()));
      rows.push_back(std::move(row));
    }
  }
  out << RenderTable(rows);
  return 0;
}

int CmdInspectImages(const GlobalOptions& opts, const std::vector<std::string>& images,
                     std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  int rc = 0;
  for (const std::string& name : images) {
    std::map<std::string, std::string> info;
    absl::StatusOr<v1::Image> image = StatusOf(*conn, name, /*verbose=*/true, &info);
    if (!image.ok()) {
      rc = PrintError(err, image.status());
      continue;
    }
    // As crictl prints it: {"status": <Image>, <each info key>: <its value, parsed if JSON>}.
    nlohmann::json doc;
    doc["status"] = MessageToJson(*image);
    for (const auto& [k, v] : info) {
      nlohmann::json parsed = nlohmann::json::parse(v, nullptr, /*allow_exceptions=*/false);
      doc[k] = parsed.is_discarded() ? nlohmann::json(v) : parsed;
    }
    out << RenderStructured(
        doc, opts.output == OutputFormat::kYaml ? OutputFormat::kYaml : OutputFormat::kJson);
  }
  return rc;
}

int CmdRemoveImages(const GlobalOptions& opts, const std::vector<std::string>& images,
                    std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  int rc = 0;
  for (const std::string& name : images) {
    absl::StatusOr<v1::Image> image = StatusOf(*conn, name, /*verbose=*/false);
    if (!image.ok()) {
      rc = PrintError(err, image.status());
      continue;
    }
    // As crictl: the image goes (by its ID), with all its tags.
    v1::RemoveImageRequest req;
    req.mutable_image()->set_image(image->id());
    v1::RemoveImageResponse resp;
    auto ctx = conn->NewContext();
    absl::Status st = conn->Check(conn->image().RemoveImage(ctx.get(), req, &resp), "RemoveImage");
    if (!st.ok()) {
      rc = PrintError(err, st);
      continue;
    }
    if (image->repo_tags().empty()) out << "Deleted: " << image->id() << "\n";
    for (const std::string& t : image->repo_tags()) out << "Deleted: " << t << "\n";
  }
  return rc;
}

int CmdImageFsInfo(const GlobalOptions& opts, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());
  v1::ImageFsInfoRequest req;
  v1::ImageFsInfoResponse resp;
  auto ctx = conn->NewContext();
  absl::Status st = conn->Check(conn->image().ImageFsInfo(ctx.get(), req, &resp), "ImageFsInfo");
  if (!st.ok()) return PrintError(err, st);
  if (opts.output != OutputFormat::kTable) {
    out << RenderStructured(MessageToJson(resp), opts.output);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"FILESYSTEM", "MOUNTPOINT", "USED", "INODES"}};
  for (const v1::FilesystemUsage& f : resp.image_filesystems()) {
    rows.push_back({"image", f.fs_id().mountpoint(), HumanSize(f.used_bytes().value()),
                    absl::StrCat(f.inodes_used().value())});
  }
  for (const v1::FilesystemUsage& f : resp.container_filesystems()) {
    rows.push_back({"container", f.fs_id().mountpoint(), HumanSize(f.used_bytes().value()),
                    absl::StrCat(f.inodes_used().value())});
  }
  out << RenderTable(rows);
  return 0;
}

int CmdImportImage(const GlobalOptions& opts, const ImportFlags& flags, std::ostream& out,
                   std::ostream& err) {
  struct stat st;
  if (::stat(flags.path.c_str(), &st) != 0) {
    return PrintError(err, absl::NotFoundError(absl::StrCat(
                               flags.path, ": ", berth::ErrnoString(errno),
                               " (want an OCI image layout directory or an OCI archive)")));
  }
  const bool is_dir = S_ISDIR(st.st_mode);
  if (is_dir && ::access((flags.path + "/index.json").c_str(), R_OK) != 0) {
    return PrintError(err, absl::InvalidArgumentError(absl::StrCat(
                               flags.path, " is not an OCI image layout (no index.json)")));
  }
  if (!is_dir && !S_ISREG(st.st_mode)) {
    return PrintError(err, absl::InvalidArgumentError(
                               absl::StrCat(flags.path, " is neither a directory nor a file")));
  }
  absl::StatusOr<Connection> conn = Connection::Open(opts.endpoint, opts.timeout);
  if (!conn.ok()) return PrintError(err, conn.status());

  auto ctx = Connection::NewLongContext(flags.timeout);
  admin::ImportImageResponse resp;
  std::unique_ptr<grpc::ClientWriter<admin::ImportImageRequest>> writer =
      conn->admin().ImportImage(ctx.get(), &resp);
  admin::ImportImageRequest header;
  for (const std::string& t : flags.tags) header.mutable_header()->add_tags(t);
  bool sent = writer->Write(header);
  std::string local_error;
  ChunkSender sender(writer.get());
  if (sent) {
    sent = is_dir ? SendLayoutDir(flags.path, &sender, &local_error)
                  : SendFile(
                        flags.path, [&](const char* p, size_t n) { return sender.Add(p, n); },
                        &local_error) &&
                        sender.Flush();
  }
  if (!local_error.empty() && !sender.broken()) {
    ctx->TryCancel();
    (void)writer->Finish();
    return PrintError(err, absl::InternalError(local_error));
  }
  if (sent) writer->WritesDone();
  grpc::Status gst = writer->Finish();
  if (AdminMissing(gst)) {
    return PrintError(err, absl::UnimplementedError(
                               absl::StrCat("the runtime at ", conn->endpoint(),
                                            " has no berth admin service (import is berth-only)")));
  }
  if (!gst.ok()) return PrintError(err, conn->Check(gst, "ImportImage"));
  if (opts.output != OutputFormat::kTable) {
    out << RenderStructured(MessageToJson(resp), opts.output);
    return 0;
  }
  out << "Imported " << resp.image_ref() << "\n";
  for (const std::string& t : resp.tags()) out << "Tagged: " << t << "\n";
  return 0;
}

}  // namespace berth::cri::client
