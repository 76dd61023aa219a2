// A main() for the fuzz targets when libFuzzer is not available (g++ builds, CI): runs
// LLVMFuzzerTestOneInput over every seed file named on the command line (files, or directories
// whose regular files are all seeds), then over deterministic mutations of each seed: byte
// flips, insertions, deletions, truncations, JSON token splices, deep nesting and splices
// between seeds. The PRNG is seeded, so every run tries the same inputs.
//
//   cni_result_fuzz [--mutations=N] [--seed=S] CORPUS_DIR_OR_FILE...
//
// Exits 0 after printing what it ran; a crash (or a sanitizer report) ends it early.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxInput = 1 << 21;  // seeds and mutants are cut here

struct Seed {
  std::string name;
  std::string data;
};

bool ReadSeed(const std::string& path, std::vector<Seed>* seeds) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    (void)std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() > kMaxInput) data.resize(kMaxInput);
  seeds->push_back({path, std::move(data)});
  return true;
}

bool CollectSeeds(const std::string& path, std::vector<Seed>* seeds) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    (void)std::fprintf(stderr, "cannot stat %s: %s\n", path.c_str(),
                       std::generic_category().message(errno).c_str());
    return false;
  }
  if (!S_ISDIR(st.st_mode)) return ReadSeed(path, seeds);
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    (void)std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(),
                       std::generic_category().message(errno).c_str());
    return false;
  }
  std::vector<std::string> names;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): one thread.
  while (struct dirent* ent = ::readdir(dir)) {
    if (ent->d_name[0] != '.') names.push_back(ent->d_name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());  // the order decides the mutations: keep it stable
  bool ok = true;
  for (const std::string& name : names) {
    std::string child = path;
    child += '/';
    child += name;
    if (::stat(child.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ok = ReadSeed(child, seeds) && ok;
  }
  return ok;
}

// Tokens that steer a JSON parser and the CNI checks into their corners.
const char* const kTokens[] = {
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0",
    "4294967296",
    "1.5",
    "18446744073709551616",
    "\"\"",
    "{}",
    "[]",
    "\"ips\"",
    "\"interfaces\"",
    "\"routes\"",
    "\"dns\"",
    "\"interface\"",
    "\"address\"",
    "\"gateway\"",
    "\"version\"",
    "\"cniVersion\"",
    "\"0.2.0\"",
    "\"0.4.0\"",
    "\"1.0.0\"",
    "\"ip4\"",
    "\"ip6\"",
    "\"plugins\"",
    "\"type\"",
    "\"name\"",
    "\"code\"",
    "\"msg\"",
    "\"10.0.0.1/8\"",
    "\"::/0\"",
    "\"fd00::1/129\"",
    "\"10.0.0.300/8\"",
    "/",
    ".",
    "\xff",
    "\xc3\xa9",
    "\xf0\x9f\x92\xa9",
};

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  std::string Mutate(const std::string& in, const std::vector<Seed>& seeds) {
    std::string s = in;
    int rounds = 1 + static_cast<int>(Below(4));
    for (int r = 0; r < rounds; ++r) MutateOnce(&s, seeds);
    if (s.size() > kMaxInput) s.resize(kMaxInput);
    return s;
  }

 private:
  void MutateOnce(std::string* s, const std::vector<Seed>& seeds) {
    size_t pos = Below(s->size() + 1);
    switch (Below(10)) {
      case 0:  // flip a bit
        if (!s->empty()) {
          char& c = (*s)[Below(s->size())];
          c = static_cast<char>(static_cast<unsigned char>(c) ^ (1u << Below(8)));
        }
        break;
      case 1:  // random byte
        if (!s->empty()) (*s)[Below(s->size())] = static_cast<char>(Below(256));
        break;
      case 2:  // insert a byte
        s->insert(pos, 1, static_cast<char>(Below(256)));
        break;
      case 3:  // delete a range
        if (!s->empty()) s->erase(Below(s->size()), 1 + Below(16));
        break;
      case 4:  // truncate
        s->resize(Below(s->size() + 1));
        break;
      case 5:  // insert a token
        s->insert(pos, kTokens[Below(std::size(kTokens))]);
        break;
      case 6:  // replace a range with a token
        if (!s->empty()) {
          size_t at = Below(s->size());
          s->replace(at, 1 + Below(8), kTokens[Below(std::size(kTokens))]);
        }
        break;
      case 7: {  // splice: a piece of another seed
        const std::string& other = seeds[Below(seeds.size())].data;
        size_t from = Below(other.size() + 1);
        s->insert(pos, other.substr(from, Below(other.size() - from + 1)));
        break;
      }
      case 8: {  // crossover: our head, another seed's tail
        const std::string& other = seeds[Below(seeds.size())].data;
        s->resize(pos);
        s->append(other.substr(Below(other.size() + 1)));
        break;
      }
      case 9: {  // nesting: a run of brackets, sometimes very deep
        size_t depth = Below(32) == 0 ? 30000 + Below(70000) : 1 + Below(100);
        char open = Below(2) ? '[' : '{';
        std::string run(depth, open);
        if (Below(2)) {
          run += std::string(depth, open == '[' ? ']' : '}');
          // After a member's colon, `[[..]],"z":` keeps the document valid JSON: the deep
          // value gets through the parser to whatever copies or dumps it.
          size_t colon = s->find(':', pos);
          if (open == '[' && colon != std::string::npos) {
            s->insert(colon + 1, run + ",\"z\":");
            break;
          }
        }
        s->insert(pos, run);
        break;
      }
    }
  }

  std::mt19937_64 rng_;
};

void Run(const std::string& data) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 2000;
  uint64_t seed = 1;
  std::vector<Seed> seeds;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--mutations=", 0) == 0) {
      mutations = std::strtol(arg.c_str() + 12, nullptr, 10);
    } else if (arg.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(arg.c_str() + 7, nullptr, 10);
    } else if (arg == "-h" || arg == "--help") {
      std::printf("usage: %s [--mutations=N] [--seed=S] CORPUS_DIR_OR_FILE...\n", argv[0]);
      return 0;
    } else {
      ok = CollectSeeds(arg, &seeds) && ok;
    }
  }
  if (!ok) return 2;
  if (seeds.empty()) {
    (void)std::fprintf(stderr, "%s: no seed inputs (give corpus directories or files)\n", argv[0]);
    return 2;
  }

  Run("");
  size_t runs = 1;
  for (const Seed& s : seeds) {
    Run(s.data);
    ++runs;
  }
  Mutator mutator(seed);
  for (const Seed& s : seeds) {
    for (long i = 0; i < mutations; ++i) {
      Run(mutator.Mutate(s.data, seeds));
      ++runs;
    }
  }
  std::printf("%s: %zu inputs (%zu seeds, %ld mutations each, seed %llu): no crash\n", argv[0],
              runs, seeds.size(), mutations, static_cast<unsigned long long>(seed));
  return 0;
}
