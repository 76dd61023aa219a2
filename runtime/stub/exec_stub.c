// berth's exec stub: the last program a container's process runs before its own. The runtime
// loads it from a sealed memfd and it only calls execve(argv[0], argv + 1, envp). So at the
// moment the container's binary is exec'd, /proc/self/exe is the sealed memfd, not berth-oci
// on the host: a container that makes its entrypoint "/proc/self/exe" (or a script or ELF
// interpreter pointing there) gets this stub again, which it cannot write (CVE-2019-5736).
//
// It is freestanding (no libc, about 1 KiB) so that loading it costs one tiny exec.
#include <asm/unistd.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "exec stub: add the syscall convention of this architecture"
#endif

static long sys3(long n, long a, long b, long c) {
#if defined(__x86_64__)
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
#else
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
#endif
}

static unsigned long length(const char* s) {
  unsigned long n = 0;
  while (s[n] != 0) n++;
  return n;
}

static void put(const char* s) { sys3(__NR_write, 2, (long)s, (long)length(s)); }

static const char* errno_name(long e) {
  switch (e) {
    case 1: return "operation not permitted";
    case 2: return "no such file or directory";
    case 7: return "argument list too long";
    case 8: return "exec format error";
    case 12: return "cannot allocate memory";
    case 13: return "permission denied";
    case 20: return "not a directory";
    case 26: return "text file busy";
    case 40: return "too many levels of symbolic links";
    default: return "error";
  }
}

__attribute__((used, noreturn)) void stub_main(long* sp) {
  long argc = sp[0];
  char** argv = (char**)(sp + 1);
  char** envp = argv + argc + 1;
  if (argc >= 2) {
    long e = -sys3(__NR_execve, (long)argv[0], (long)(argv + 1), (long)envp);
    put("exec ");
    put(argv[0]);
    put(": ");
    put(errno_name(e));
    put("\n");
  }
  for (;;) sys3(__NR_exit_group, 127, 0, 0);
}

#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n"
        " call stub_main\n hlt\n");
#else
__asm__(".text\n.globl _start\n_start:\n mov x0, sp\n bl stub_main\n");
#endif
