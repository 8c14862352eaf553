#include "launcher.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

namespace sparsity::demo {

namespace {

volatile sig_atomic_t forwarded_signal = 0;

void remember_signal(int signal) { forwarded_signal = signal; }

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "stopped";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open a socket to find a free port: {}", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::runtime_error(fmt::format("cannot find a free port: {}", std::strerror(error)));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

int launch_local_ranks(int nproc, const std::string& program, const std::vector<std::string>& args) {
  if (nproc < 1 || nproc > 1024) throw std::invalid_argument(fmt::format("--nproc {} is out of range [1, 1024]", nproc));
  const int port = free_local_port();
  std::cerr << fmt::format("trainer_demo: launching {} ranks (MASTER_ADDR=127.0.0.1 MASTER_PORT={})\n", nproc, port);

  // Signals are remembered, then forwarded from the loop below.
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);

  std::vector<pid_t> ranks(static_cast<size_t>(nproc), -1);
  auto stop_all = [&](int signal) {
    for (const pid_t pid : ranks)
      if (pid > 0) ::kill(pid, signal);
  };
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int error = errno;
      stop_all(SIGKILL);
      for (const pid_t p : ranks)
        if (p > 0) ::waitpid(p, nullptr, 0);
      throw std::runtime_error(fmt::format("cannot start rank {}: {}", r, std::strerror(error)));
    }
    if (pid == 0) {
      // The child: default signal handling, the launcher's variables, exec.
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(program.c_str()));
      for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      ::execv(program.c_str(), argv.data());
      std::cerr << fmt::format("trainer_demo: rank {}: cannot run {}: {}\n", r, program, std::strerror(errno));
      _exit(127);
    }
    ranks[static_cast<size_t>(r)] = pid;
  }

  int result = 0;
  int running = nproc;
  bool stopping = false;
  std::chrono::steady_clock::time_point stop_started;
  while (running > 0) {
    if (forwarded_signal != 0) {
      const int signal = forwarded_signal;
      forwarded_signal = 0;
      std::cerr << fmt::format("trainer_demo: {}: passing it on to the ranks\n", strsignal(signal));
      stop_all(signal);
      if (!stopping) {
        stopping = true;
        stop_started = std::chrono::steady_clock::now();
        if (result == 0) result = 128 + signal;
      }
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      int rank = -1;
      for (int r = 0; r < nproc; ++r)
        if (ranks[static_cast<size_t>(r)] == pid) rank = r;
      if (rank < 0) continue;
      ranks[static_cast<size_t>(rank)] = -1;
      --running;
      const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      if (failed && !stopping) {
        std::cerr << fmt::format("trainer_demo: rank {} {}; stopping the other ranks\n", rank, describe_status(status));
        result = exit_code_of(status);
        stopping = true;
        stop_started = std::chrono::steady_clock::now();
        stop_all(SIGTERM);
      } else if (failed && result == 0) {
        result = exit_code_of(status);
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (stopping && std::chrono::steady_clock::now() - stop_started > std::chrono::seconds(5)) stop_all(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace sparsity::demo
