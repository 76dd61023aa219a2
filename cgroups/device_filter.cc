#include "cgroups/device_filter.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::cgroups {

namespace {

// Registers: R1 = ctx (struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}),
// R2 = device type, R3 = requested access, R4 = major, R5 = minor, R0 = verdict.
bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

int AccessBits(absl::string_view access) {
  int bits = 0;
  for (char c : access) {
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

bool IsAll(const DeviceRule& r) {
  return r.type == 'a' && r.major < 0 && r.minor < 0 &&
         AccessBits(r.access) == (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
}

absl::Status CheckRule(const DeviceRule& r) {
  if (r.type != 'a' && r.type != 'c' && r.type != 'b') {
    return absl::InvalidArgumentError(
        absl::StrCat("device rule type '", std::string(1, r.type), "' is not a, c or b"));
  }
  for (char c : r.access) {
    if (c != 'r' && c != 'w' && c != 'm') {
      return absl::InvalidArgumentError(
          absl::StrCat("device rule access \"", r.access, "\" is not made of r, w and m"));
    }
  }
  if (r.major > 0xffffffffLL || r.minor > 0xffffffffLL) {
    return absl::InvalidArgumentError("device rule major/minor out of range");
  }
  return absl::OkStatus();
}

// The rules that still matter after the last "all" rule, and the default it set.
void Effective(const std::vector<DeviceRule>& rules, bool* default_allow,
               std::vector<const DeviceRule*>* exceptions) {
  *default_allow = false;
  exceptions->clear();
  for (const DeviceRule& r : rules) {
    if (IsAll(r)) {
      *default_allow = r.allow;
      exceptions->clear();
    } else {
      exceptions->push_back(&r);
    }
  }
}

bool Matches(const DeviceRule& r, char type, int64_t major, int64_t minor, int access_bits) {
  if (r.type != 'a' && r.type != type) return false;
  if ((access_bits & ~AccessBits(r.access)) != 0) return false;
  if (r.major >= 0 && r.major != major) return false;
  if (r.minor >= 0 && r.minor != minor) return false;
  return true;
}

long Bpf(int cmd, union bpf_attr* attr) {
  return ::syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

}  // namespace

bool DeviceAllowed(const std::vector<DeviceRule>& rules, char type, int64_t major, int64_t minor,
                   absl::string_view access) {
  bool allow = false;
  std::vector<const DeviceRule*> exceptions;
  Effective(rules, &allow, &exceptions);
  int bits = AccessBits(access);
  for (auto it = exceptions.rbegin(); it != exceptions.rend(); ++it) {
    if (Matches(**it, type, major, minor, bits)) return (*it)->allow;
  }
  return allow;
}

absl::StatusOr<std::vector<bpf_insn>> CompileDeviceFilter(const std::vector<DeviceRule>& rules) {
  for (const DeviceRule& r : rules) RETURN_IF_ERROR(CheckRule(r));
  bool default_allow = false;
  std::vector<const DeviceRule*> exceptions;
  Effective(rules, &default_allow, &exceptions);

  std::vector<bpf_insn> p;
  // R2 = type (low 16 bits of access_type), R3 = access (high 16 bits), R4 = major, R5 = minor.
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0));
  p.push_back(Insn(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff));
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, 3, 1, 0, 0));
  p.push_back(Insn(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16));
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0));
  p.push_back(Insn(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0));

  // The last matching rule decides: test them from the last to the first, each block jumping
  // to the next block when a condition fails.
  for (auto it = exceptions.rbegin(); it != exceptions.rend(); ++it) {
    const DeviceRule& r = **it;
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;  // indexes of "goto next block" instructions to patch
    if (r.type != 'a') {
      int t = r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
      jumps.push_back(block.size());
      block.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0, t));
    }
    int denied_bits =
        ~AccessBits(r.access) & (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
    if (denied_bits != 0) {
      // Any requested bit outside the rule's access: not this rule.
      block.push_back(Insn(BPF_ALU | BPF_MOV | BPF_X, 1, 3, 0, 0));
      block.push_back(Insn(BPF_ALU | BPF_AND | BPF_K, 1, 0, 0, denied_bits));
      jumps.push_back(block.size());
      block.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 1, 0, 0, 0));
    }
    if (r.major >= 0) {
      jumps.push_back(block.size());
      block.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, static_cast<int32_t>(r.major)));
    }
    if (r.minor >= 0) {
      jumps.push_back(block.size());
      block.push_back(Insn(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, static_cast<int32_t>(r.minor)));
    }
    block.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r.allow ? 1 : 0));
    block.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    for (size_t j : jumps) block[j].off = static_cast<int16_t>(block.size() - j - 1);
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, default_allow ? 1 : 0));
  p.push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  if (p.size() > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(rules.size(), " device rules are too many"));
  }
  return p;
}

absl::Status AttachDeviceFilter(int cgroup_fd, const std::vector<DeviceRule>& rules) {
  ASSIGN_OR_RETURN(std::vector<bpf_insn> insns, CompileDeviceFilter(rules));

  // The programs attached now, to detach once the new one is in place.
  uint32_t ids[64] = {};
  union bpf_attr query {};
  query.query.target_fd = static_cast<uint32_t>(cgroup_fd);
  query.query.attach_type = BPF_CGROUP_DEVICE;
  query.query.prog_ids = reinterpret_cast<uint64_t>(ids);
  query.query.prog_cnt = 64;
  if (Bpf(BPF_PROG_QUERY, &query) != 0) return LastErrnoError("query cgroup device programs");
  const uint32_t old_count = query.query.prog_cnt;

  // Loaded without a verifier log first: with one, a log that outgrows its buffer fails the
  // load with ENOSPC even when the program is fine (a level-1 log of a 130-instruction filter
  // does). Only a refused program is loaded again, with the log, to say why.
  static const char kLicense[] = "Apache-2.0";
  auto load_prog = [&](char* log, uint32_t log_size) {
    union bpf_attr load {};
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = reinterpret_cast<uint64_t>(insns.data());
    load.insn_cnt = static_cast<uint32_t>(insns.size());
    load.license = reinterpret_cast<uint64_t>(kLicense);
    if (log != nullptr) {
      load.log_buf = reinterpret_cast<uint64_t>(log);
      load.log_size = log_size;
      load.log_level = 1;
    }
    return UniqueFd(static_cast<int>(Bpf(BPF_PROG_LOAD, &load)));
  };
  UniqueFd prog = load_prog(nullptr, 0);
  if (!prog) {
    int err = errno;
    std::string log(64 << 10, '\0');
    UniqueFd again = load_prog(log.data(), static_cast<uint32_t>(log.size() - 1));
    if (again) {
      prog = std::move(again);
    } else {
      log.resize(std::strlen(log.c_str()));
      if (log.size() > 2048) log = "..." + log.substr(log.size() - 2048);  // the end says why
      return ErrnoError(
          err, absl::StrCat("load the cgroup device filter (", insns.size(), " instructions",
                            log.empty() ? "" : absl::StrCat("; verifier: ", log), ")"));
    }
  }
  union bpf_attr attach {};
  attach.target_fd = static_cast<uint32_t>(cgroup_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attach) != 0) return LastErrnoError("attach the cgroup device filter");

  for (uint32_t i = 0; i < old_count && i < 64; ++i) {
    union bpf_attr get {};
    get.prog_id = ids[i];
    UniqueFd old(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &get)));
    if (!old) continue;  // already gone
    union bpf_attr detach {};
    detach.target_fd = static_cast<uint32_t>(cgroup_fd);
    detach.attach_bpf_fd = static_cast<uint32_t>(old.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) != 0 && errno != ENOENT) {
      return LastErrnoError("detach the previous cgroup device filter");
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::cgroups
