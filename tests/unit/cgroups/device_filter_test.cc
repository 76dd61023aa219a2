// The compiled device program, run by a small interpreter of the instructions it uses, must
// decide every request exactly as the rules say.
#include "cgroups/device_filter.h"

#include "gtest/gtest.h"

namespace berth::cgroups {
namespace {

// Interprets the subset of eBPF the compiler emits. Returns R0 at exit.
int64_t Run(const std::vector<bpf_insn>& p, uint32_t access_type, uint32_t major, uint32_t minor) {
  uint64_t r[11] = {};
  uint32_t ctx[3] = {access_type, major, minor};
  for (size_t pc = 0; pc < p.size(); ++pc) {
    const bpf_insn& i = p[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        EXPECT_EQ(i.src_reg, 1);
        r[i.dst_reg] = ctx[i.off / 4];
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg] & i.imm);
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) >> i.imm;
        break;
      case BPF_ALU | BPF_MOV | BPF_X: r[i.dst_reg] = static_cast<uint32_t>(r[i.src_reg]); break;
      case BPF_ALU64 | BPF_MOV | BPF_K:
        r[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm));
        break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int64_t>(r[0]);
      default: ADD_FAILURE() << "unexpected opcode " << int(i.code); return -1;
    }
  }
  ADD_FAILURE() << "fell off the end";
  return -1;
}

void ExpectSameDecisions(const std::vector<DeviceRule>& rules) {
  absl::StatusOr<std::vector<bpf_insn>> p = CompileDeviceFilter(rules);
  ASSERT_TRUE(p.ok()) << p.status();
  for (char type : {'c', 'b'}) {
    for (int64_t major : {1, 5, 10, 136, 254}) {
      for (int64_t minor : {0, 1, 3, 5, 8, 9, 200}) {
        for (const char* access : {"r", "w", "m", "rw", "rwm", "wm"}) {
          uint32_t bits = 0;
          for (const char* c = access; *c; ++c) {
            bits |= *c == 'r'   ? BPF_DEVCG_ACC_READ
                    : *c == 'w' ? BPF_DEVCG_ACC_WRITE
                                : BPF_DEVCG_ACC_MKNOD;
          }
          uint32_t t = type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
          bool want = DeviceAllowed(rules, type, major, minor, access);
          EXPECT_EQ(
              Run(*p, (bits << 16) | t, static_cast<uint32_t>(major), static_cast<uint32_t>(minor)),
              want ? 1 : 0)
              << type << " " << major << ":" << minor << " " << access;
        }
      }
    }
  }
}

TEST(DeviceFilter, DefaultContainerRules) {
  // What a container spec usually says: deny all, then the standard devices.
  std::vector<DeviceRule> rules = {
      {.allow = false, .type = 'a', .access = "rwm"},
      {.allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm"},      // null
      {.allow = true, .type = 'c', .major = 1, .minor = 5, .access = "rwm"},      // zero
      {.allow = true, .type = 'c', .major = 136, .minor = -1, .access = "rwm"},   // pts
      {.allow = true, .type = 'c', .major = 5, .minor = 0, .access = "rw"},       // tty, no mknod
      {.allow = false, .type = 'c', .major = 10, .minor = 200, .access = "rwm"},  // tun denied
  };
  ExpectSameDecisions(rules);
  EXPECT_TRUE(DeviceAllowed(rules, 'c', 1, 3, "rw"));
  EXPECT_FALSE(DeviceAllowed(rules, 'c', 1, 8, "r"));
  EXPECT_FALSE(DeviceAllowed(rules, 'c', 5, 0, "m"));
  EXPECT_TRUE(DeviceAllowed(rules, 'c', 136, 9, "w"));
  EXPECT_FALSE(DeviceAllowed(rules, 'b', 8, 0, "r"));
}

TEST(DeviceFilter, AllowAllWithExceptionsAndLastMatchWins) {
  std::vector<DeviceRule> rules = {
      {.allow = true, .type = 'a', .access = "rwm"},
      {.allow = false, .type = 'b', .major = -1, .minor = -1, .access = "w"},
      {.allow = true, .type = 'b', .major = 254, .minor = 0, .access = "w"},  // later: wins
      {.allow = false, .type = 'c', .major = 1, .minor = 3, .access = "rwm"},
  };
  ExpectSameDecisions(rules);
  EXPECT_FALSE(DeviceAllowed(rules, 'b', 8, 0, "w"));
  EXPECT_TRUE(DeviceAllowed(rules, 'b', 254, 0, "w"));
  EXPECT_TRUE(DeviceAllowed(rules, 'b', 8, 0, "r"));
  EXPECT_FALSE(DeviceAllowed(rules, 'c', 1, 3, "r"));
}

TEST(DeviceFilter, AnAllRuleResetsEarlierOnes) {
  std::vector<DeviceRule> rules = {
      {.allow = true, .type = 'c', .major = 1, .minor = 3, .access = "rwm"},
      {.allow = false, .type = 'a', .access = "rwm"},
  };
  ExpectSameDecisions(rules);
  EXPECT_FALSE(DeviceAllowed(rules, 'c', 1, 3, "r"));
  ExpectSameDecisions({});  // no rules at all: deny
}

TEST(DeviceFilter, BadRulesAreRefused) {
  EXPECT_FALSE(CompileDeviceFilter({{.allow = true, .type = 'x'}}).ok());
  EXPECT_FALSE(CompileDeviceFilter({{.allow = true, .type = 'c', .access = "rwx"}}).ok());
}

}  // namespace
}  // namespace berth::cgroups
