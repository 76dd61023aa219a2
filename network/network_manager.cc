#include "network/network_manager.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::network {

namespace {

constexpr char kIngressAnnotation[] = "kubernetes.io/ingress-bandwidth";
constexpr char kEgressAnnotation[] = "kubernetes.io/egress-bandwidth";

std::string RuntimeConfigPath(const std::string& cache_dir) {
  return absl::StrCat(cache_dir, "/runtime-config.json");
}

absl::StatusOr<std::vector<std::string>> SplitCidrs(absl::string_view cidrs) {
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(cidrs, ',', absl::SkipWhitespace())) {
    std::string cidr(absl::StripAsciiWhitespace(c));
    // Validated the same way CNI results are.
    absl::StatusOr<CniResult> parsed = ParseCniResult(
        nlohmann::json{{"cniVersion", "1.0.0"}, {"ips", {{{"address", cidr}}}}}.dump(), "1.0.0");
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("pod CIDR \"", cidr, "\" is not a CIDR"));
    }
    out.push_back(cidr);
  }
  return out;
}

}  // namespace

absl::StatusOr<uint64_t> ParseBandwidth(absl::string_view quantity) {
  std::string q(absl::StripAsciiWhitespace(quantity));
  static const std::pair<const char*, double> kSuffixes[] = {{"Ki", 1024.0},
                                                             {"Mi", 1048576.0},
                                                             {"Gi", 1073741824.0},
                                                             {"Ti", 1099511627776.0},
                                                             {"Pi", 1125899906842624.0},
                                                             {"Ei", 1152921504606846976.0},
                                                             {"k", 1e3},
                                                             {"M", 1e6},
                                                             {"G", 1e9},
                                                             {"T", 1e12},
                                                             {"P", 1e15},
                                                             {"E", 1e18},
                                                             {"m", 1e-3}};
  double mult = 1;
  absl::string_view num = q;
  for (const auto& [suffix, m] : kSuffixes) {
    if (absl::ConsumeSuffix(&num, suffix)) {
      mult = m;
      break;
    }
  }
  double v = 0;
  if (num.empty() || !absl::SimpleAtod(num, &v) || v < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bandwidth \"", quantity, "\" is not a quantity"));
  }
  double bits = v * mult;
  if (bits < 1e3 || bits > 1e15) {
    return absl::InvalidArgumentError(
        absl::StrCat("bandwidth \"", quantity, "\" is outside 1k..1P bits per second"));
  }
  return static_cast<uint64_t>(bits);
}

NetworkManager::NetworkManager(Options options, std::shared_ptr<PluginExecutor> executor)
    : options_(std::move(options)) {
  if (!executor) executor = std::make_shared<ProcessPluginExecutor>();
  invoker_ =
      std::make_unique<CniInvoker>(CniInvoker::Options{.bin_dirs = options_.bin_dirs,
                                                       .cache_dir = options_.cache_dir,
                                                       .plugin_timeout = options_.plugin_timeout},
                                   std::move(executor));
}

absl::StatusOr<std::unique_ptr<NetworkManager>> NetworkManager::Create(
    Options options, std::shared_ptr<PluginExecutor> executor) {
  if (options.cache_dir.empty()) return absl::InvalidArgumentError("network: no cache dir");
  std::unique_ptr<NetworkManager> m(new NetworkManager(std::move(options), std::move(executor)));
  RETURN_IF_ERROR(MkdirAll(m->options_.cache_dir, 0700));
  absl::StatusOr<std::string> saved = ReadFile(RuntimeConfigPath(m->options_.cache_dir));
  if (saved.ok()) {
    nlohmann::json j = nlohmann::json::parse(*saved, nullptr, false);
    if (j.is_object() && j["podCIDR"].is_string()) {
      absl::StatusOr<std::vector<std::string>> cidrs = SplitCidrs(j["podCIDR"].get<std::string>());
      if (cidrs.ok()) m->pod_cidrs_ = *cidrs;
    }
  }
  m->inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!m->inotify_) return LastErrnoError("inotify_init1");
  m->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->wake_) return LastErrnoError("eventfd");
  m->AddWatches();
  m->Reload();
  m->watcher_ = std::thread([p = m.get()] { p->Watch(); });
  return m;
}

NetworkManager::~NetworkManager() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    watcher_.join();
  }
}

void NetworkManager::AddWatches() {
  std::vector<std::string> dirs = {options_.conf_dir};
  dirs.insert(dirs.end(), options_.bin_dirs.begin(), options_.bin_dirs.end());
  for (const std::string& d : dirs) {
    bool have = false;
    for (const auto& [wd, dir] : watched_) have |= dir == d;
    if (have) continue;
    int wd = ::inotify_add_watch(inotify_.get(), d.c_str(),
                                 IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO |
                                     IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
    if (wd >= 0) watched_[wd] = d;  // a dir that does not exist yet is retried on rescan
  }
}

void NetworkManager::Reload() {
  NetworkReadiness r =
      CheckCniReadiness(options_.conf_dir, options_.bin_dirs, options_.network_name);
  std::optional<CniConfigList> net;
  if (r.ready) {
    absl::StatusOr<CniConfigList> list = LoadCniConfigFile(r.file);
    if (list.ok()) net = std::move(*list);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (r.ready != readiness_.ready || r.file != readiness_.file || r.message != readiness_.message) {
    if (r.ready) {
      log::Info("CNI network ready", {{"network", r.network}, {"config", r.file}});
    } else {
      log::Warn("CNI network not ready", {{"reason", r.message}});
    }
  }
  readiness_ = std::move(r);
  network_ = std::move(net);
}

void NetworkManager::Watch() {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    struct pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(options_.rescan_interval)));
    if (n < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (n > 0 && fds[0].revents) {
      ssize_t len;
      while ((len = ::read(inotify_.get(), buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + len;) {
          auto* ev = reinterpret_cast<struct inotify_event*>(p);
          if (ev->mask & IN_MOVE_SELF) (void)::inotify_rm_watch(inotify_.get(), ev->wd);
          // A removed or moved dir loses its watch; it is watched again once it is back.
          if (ev->mask & (IN_IGNORED | IN_MOVE_SELF)) watched_.erase(ev->wd);
          p += sizeof(struct inotify_event) + ev->len;
        }
      }
    }
    AddWatches();
    Reload();
  }
}

NetworkReadiness NetworkManager::Readiness() const {
  std::lock_guard<std::mutex> lock(mu_);
  return readiness_;
}

absl::Status NetworkManager::SetPodCidrs(absl::string_view cidrs) {
  ASSIGN_OR_RETURN(std::vector<std::string> parsed, SplitCidrs(cidrs));
  RETURN_IF_ERROR(WriteFileAtomic(RuntimeConfigPath(options_.cache_dir),
                                  nlohmann::json{{"podCIDR", std::string(cidrs)}}.dump(), 0600));
  std::lock_guard<std::mutex> lock(mu_);
  pod_cidrs_ = std::move(parsed);
  return absl::OkStatus();
}

std::vector<std::string> NetworkManager::PodCidrs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pod_cidrs_;
}

absl::StatusOr<CniRuntimeConf> NetworkManager::RuntimeConfFor(const PodNetworkRequest& req) const {
  CniRuntimeConf rt;
  rt.container_id = req.sandbox_id;
  rt.netns = req.netns_path;
  rt.ifname = options_.ifname;
  rt.args = KubernetesCniArgs(req.pod_namespace, req.pod_name, req.sandbox_id, req.pod_uid);

  nlohmann::json caps = nlohmann::json::object();
  nlohmann::json ports = nlohmann::json::array();
  for (const PortMapping& p : req.port_mappings) {
    if (p.host_port <= 0) continue;  // only published ports reach the node's CNI
    std::string proto = absl::AsciiStrToLower(p.protocol.empty() ? "tcp" : p.protocol);
    if (proto != "tcp" && proto != "udp" && proto != "sctp") {
      return absl::InvalidArgumentError(
          absl::StrCat("port mapping protocol \"", p.protocol, "\" is not tcp, udp or sctp"));
    }
    if (p.host_port > 65535 || p.container_port <= 0 || p.container_port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("port mapping ", p.host_port, ":", p.container_port, " is out of range"));
    }
    nlohmann::json m = {
        {"hostPort", p.host_port}, {"containerPort", p.container_port}, {"protocol", proto}};
    if (!p.host_ip.empty()) m["hostIP"] = p.host_ip;
    ports.push_back(std::move(m));
  }
  if (!ports.empty()) caps["portMappings"] = std::move(ports);

  nlohmann::json bw = nlohmann::json::object();
  for (const auto& [annotation, rate_key, burst_key] :
       {std::tuple{kIngressAnnotation, "ingressRate", "ingressBurst"},
        std::tuple{kEgressAnnotation, "egressRate", "egressBurst"}}) {
    auto it = req.annotations.find(annotation);
    if (it == req.annotations.end()) continue;
    absl::StatusOr<uint64_t> rate = ParseBandwidth(it->second);
    if (!rate.ok()) return Annotate(rate.status(), annotation);
    bw[rate_key] = *rate;
    bw[burst_key] = std::numeric_limits<uint32_t>::max();  // as containerd: effectively unbounded
  }
  if (!bw.empty()) caps["bandwidth"] = std::move(bw);

  if (!req.dns.servers.empty() || !req.dns.searches.empty() || !req.dns.options.empty()) {
    caps["dns"] = {
        {"servers", req.dns.servers}, {"searches", req.dns.searches}, {"options", req.dns.options}};
  }
  std::vector<std::string> cidrs = PodCidrs();
  if (!cidrs.empty()) {
    nlohmann::json ranges = nlohmann::json::array();
    for (const std::string& c : cidrs) ranges.push_back(nlohmann::json::array({{{"subnet", c}}}));
    caps["ipRanges"] = std::move(ranges);
  }
  if (!req.cgroup_parent.empty()) caps["cgroupPath"] = req.cgroup_parent;
  nlohmann::json annotations = nlohmann::json::object();
  for (const auto& [k, v] : req.annotations) annotations[k] = v;
  caps["io.kubernetes.cri.pod-annotations"] = std::move(annotations);
  rt.capability_args = std::move(caps);
  return rt;
}

absl::StatusOr<PodNetworkStatus> NetworkManager::SetUp(const PodNetworkRequest& req) {
  std::optional<CniConfigList> net;
  NetworkReadiness ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    net = network_;
    ready = readiness_;
  }
  if (!net) {
    Reload();  // the watcher may not have seen a config dropped a moment ago
    std::lock_guard<std::mutex> lock(mu_);
    net = network_;
    ready = readiness_;
  }
  if (!net) return absl::FailedPreconditionError(ready.message);
  ASSIGN_OR_RETURN(CniRuntimeConf rt, RuntimeConfFor(req));
  ASSIGN_OR_RETURN(CniResult result, invoker_->Add(*net, rt));
  PodNetworkStatus status;
  status.network = net->name;
  status.ips = PodIps(result, rt.ifname);
  status.result = std::move(result);
  return status;
}

absl::Status NetworkManager::Check(const PodNetworkRequest& req) {
  ASSIGN_OR_RETURN(std::vector<CachedAttachment> cached,
                   invoker_->CachedAttachments(req.sandbox_id));
  if (cached.empty()) {
    return absl::NotFoundError(absl::StrCat("sandbox ", req.sandbox_id, " is not attached"));
  }
  for (const CachedAttachment& a : cached) RETURN_IF_ERROR(invoker_->Check(a.config, a.runtime));
  return absl::OkStatus();
}

absl::Status NetworkManager::TearDown(const std::string& sandbox_id) {
  return invoker_->DelCached(sandbox_id);
}

absl::StatusOr<std::optional<PodNetworkStatus>> NetworkManager::Attached(
    const std::string& sandbox_id) {
  ASSIGN_OR_RETURN(std::vector<CachedAttachment> cached, invoker_->CachedAttachments(sandbox_id));
  for (CachedAttachment& a : cached) {
    if (!a.result) continue;
    PodNetworkStatus s;
    s.network = a.config.name;
    s.ips = PodIps(*a.result, a.runtime.ifname);
    s.result = std::move(*a.result);
    return std::optional<PodNetworkStatus>(std::move(s));
  }
  return std::optional<PodNetworkStatus>();
}

}  // namespace berth::network
