#include "sparsity/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sparsity {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int error) {
  throw std::runtime_error(fmt::format("{} '{}': {}", what, path, std::strerror(error)));
}

// Read from /proc rather than with umask(2), whose set-and-restore races with
// other threads creating files.
mode_t current_umask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8));
  }
  return 022;
}

void write_atomically(const std::string& path, const char* data, size_t size) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail("cannot create a temporary file next to", path, errno);
  auto give_up = [&](const char* what) {
    const int error = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(what, path, error);
  };
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up("cannot write");
    }
    written += static_cast<size_t>(n);
  }
  // mkstemp creates 0600; give the file the permissions a plain create would.
  if (::fchmod(fd, 0666 & ~current_umask()) != 0) give_up("cannot set permissions of");
  if (::fsync(fd) != 0) give_up("cannot flush");
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    fail("cannot close", path, error);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    fail("cannot rename the temporary file onto", path, error);
  }
}

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<char>& bytes) {
  write_atomically(path, bytes.data(), bytes.size());
}

void write_file_atomically(const std::string& path, std::string_view text) {
  write_atomically(path, text.data(), text.size());
}

std::vector<char> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  auto give_up = [&](const char* what, int error) {
    ::close(fd);
    fail(what, path, error);
  };
  struct stat info {};
  if (::fstat(fd, &info) != 0) give_up("cannot read", errno);
  // A directory opens fine, and an ifstream then reports a size near 2^63.
  if (S_ISDIR(info.st_mode)) give_up("cannot read", EISDIR);
  // The size is only a hint: pipes and /proc files report 0.
  size_t size = 0;
  std::vector<char> bytes(S_ISREG(info.st_mode) && info.st_size > 0 ? static_cast<size_t>(info.st_size) + 1
                                                                      : size_t{1} << 16);
  while (true) {
    if (size == bytes.size()) bytes.resize(2 * bytes.size());
    const ssize_t n = ::read(fd, bytes.data() + size, bytes.size() - size);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up("cannot read", errno);
    }
    if (n == 0) break;
    size += static_cast<size_t>(n);
  }
  bytes.resize(size);
  ::close(fd);
  return bytes;
}

}  // namespace sparsity
