// SPDX-License-Identifier: MIT
// The same jobs done by four concurrency models, in one run: a thread per connection, a thread
// pool with futures (concurrent.futures.ThreadPoolExecutor), a pool of forked worker processes
// (ProcessPoolExecutor) and coring (asyncio); plus a CPU-bound job where threads and processes win.
//
// Usage: bench_models [--rounds N] [--connections N] [--fanout N] [--delay-ms N]
//                     [--cpu-jobs N] [--cpu-iters N] [--csv FILE] [--smoke] [--only SCENARIO]
//                     [--model NAME]...
//
// Scenarios (each model of each scenario runs in a fresh forked process, so its CPU time, peak
// memory and threads are its own; the driver itself never starts a thread):
//   connections  N connections (default 10,000) open at once, each sending one request to a slow
//                peer that answers after --delay-ms (default 200 ms) and closes.
//   fanout       one caller fans out M requests (default 1,000) to the same peer and gathers.
//   cpu          --cpu-jobs hashing jobs (pure CPU), gathered.
//   startup      each model starts, runs one no-op job per worker (64 in all) and stops.
// The peer is a coring server in a child process (one loop: a connection costs it a coroutine).
//
// Pool models in the connections scenario are capped at 10 waves (10 x pool size requests, each
// wave one delay long): a pool of 32 would need 10,000 / 32 x 200 ms = 63 s alone. Their rows say
// "capped" and give the wall time measured and the wall time projected for all N requests.
//
// Output: per-run rows as CSV (--csv FILE; plot_models.py draws them), progress on stderr, and
// on stdout a markdown table of medians over the rounds. --smoke runs every model on a tiny job
// (50 connections, 10 ms) and exits 1 unless every model completed every request: the test suite
// runs that (correctness only; performance is never asserted).
#include <coring/coring.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <queue>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
    int rounds = 3;
    int connections = 10'000;
    int fanout = 1'000;
    int delay_ms = 200;
    int cpu_jobs = 32;
    std::uint64_t cpu_iters = 20'000'000;
    std::vector<int> thread_pools{32, 64, 256};
    std::vector<int> process_pools{32, 64};
    int startup_jobs = 64;
    int waves_cap = 10; // pool models in the connections scenario: at most this many waves
    std::string csv;
    std::string only;
    std::vector<std::string> models; // --model NAME...: only these (default: every model)
    bool smoke = false;
};

Config cfg;
std::uint16_t peer_port = 0;
pid_t peer_pid = 0;

// ---- measurement ---------------------------------------------------------------------------

/// A field of /proc/self/status in KiB (VmHWM, VmRSS), 0 when absent.
long status_kib(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    std::size_t n = std::strlen(field);
    while (std::getline(in, line)) {
        if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
            return std::strtol(line.c_str() + n + 1, nullptr, 10);
        }
    }
    return 0;
}

/// A field of /proc/meminfo in KiB (system-wide: KernelStack, PageTables).
long meminfo_kib(const char* field) {
    std::ifstream in("/proc/meminfo");
    std::string line;
    std::size_t n = std::strlen(field);
    while (std::getline(in, line)) {
        if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
            return std::strtol(line.c_str() + n + 1, nullptr, 10);
        }
    }
    return 0;
}

long kernel_kib() {
    return meminfo_kib("KernelStack") + meminfo_kib("PageTables");
}

/// utime + stime of another process, from /proc/<pid>/stat.
double process_cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    std::size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) {
        return 0;
    }
    // After ") ": state is field 3; utime and stime are fields 14 and 15.
    const char* p = stat.c_str() + close_paren + 2;
    double ticks = 0;
    for (int field = 3; field <= 15 && *p != '\0'; ++field) {
        char* end = nullptr;
        double v = std::strtod(p, &end);
        if (field >= 14) {
            ticks += v;
        }
        p = end != p ? end : p + 1;
        while (*p == ' ') {
            ++p;
        }
    }
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// TcpExt ListenOverflows of this network namespace: SYNs dropped because an accept queue was
/// full (the client then retransmits after 1 s). Other programs on the machine add to it.
long listen_overflows() {
    std::ifstream in("/proc/net/netstat");
    std::string names;
    std::string values;
    while (std::getline(in, names) && std::getline(in, values)) {
        if (names.rfind("TcpExt:", 0) != 0) {
            continue;
        }
        std::istringstream n(names);
        std::istringstream v(values);
        std::string name;
        std::string value;
        while (n >> name && v >> value) {
            if (name == "ListenOverflows") {
                return std::strtol(value.c_str(), nullptr, 10);
            }
        }
    }
    return 0;
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one;
    in >> one;
    return one;
}

int thread_count() {
    int n = 0;
    if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] != '.') {
                ++n;
            }
        }
        closedir(d);
    }
    return n;
}

double cpu_seconds() {
    double total = 0;
    for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
        rusage ru{};
        getrusage(who, &ru);
        total += static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }
    return total;
}

/// What one run of one model reports back to the driver (over a pipe: trivially copyable).
struct Result {
    int requests = 0;    // what the run was asked to do
    int ok = 0;          // requests answered correctly
    int concurrency = 0; // requests in flight at once (threads, pool size, or all)
    int threads = 0;     // threads the model created (beyond the main thread)
    int processes = 1;   // processes, the model's own included
    double wall_s = 0;
    double cpu_s = 0;       // user + sys of the model's process and its children
    double peak_mib = 0;    // VmHWM, summed over the processes
    double base_mib = 0;    // VmRSS before the run started
    double kernel_mib = 0;  // thread per connection: kernel stacks + page tables it added
    double peer_cpu_s = 0;  // CPU time the peer spent serving this run (driver-measured)
    long listen_drops = 0;  // SYNs dropped on full accept queues during the run (system-wide)
    double max_lag_ms = -1; // coring: the longest a 1 ms sleep overslept (the loop's worst stall)
};

// ---- the slow peer -------------------------------------------------------------------------

std::chrono::milliseconds peer_delay{200};

coring::Task<> peer_answer(coring::StreamReader reader, coring::StreamWriter writer) {
    try {
        std::string request = co_await reader.readexactly(8);
        co_await coring::sleep(peer_delay);
        writer.write(request);
        co_await writer.drain();
    } catch (const std::exception&) {
        // a client gave up: nothing to answer
    }
    writer.close();
}

coring::Task<int> peer_main(std::vector<int> listen_fds) {
    coring::ServerOptions options;
    options.backlog = 65535; // the kernel caps it at net.core.somaxconn
    std::vector<coring::Server> servers;
    for (int fd : listen_fds) {
        coring::Server server =
                co_await coring::start_server(peer_answer, coring::Socket::from_fd(fd), options);
        servers.push_back(std::move(server));
    }
    co_await servers.front().serve_forever();
    co_return 0;
}

/// Forks the peer; it serves on listen_fds until killed.
pid_t start_peer(const std::vector<int>& listen_fds) {
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); // a killed driver (a test timeout) takes the peer along
        if (getppid() == 1) {
            _exit(0);
        }
        peer_delay = std::chrono::milliseconds(cfg.delay_ms);
        _exit(coring::run(peer_main(listen_fds)));
    }
    for (int fd : listen_fds) {
        close(fd);
    }
    return pid;
}

// ---- a request, blocking (for the thread and process models) -------------------------------

sockaddr_in peer_address() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(peer_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

bool read_full(int fd, char* p, std::size_t n) {
    while (n > 0) {
        ssize_t r = ::read(fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

/// Connects, sends an 8-byte request id, waits for its echo and the peer's close.
bool blocking_request(std::uint64_t id) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in a = peer_address();
    bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    char buf[8];
    std::memcpy(buf, &id, 8);
    ok = ok && ::write(fd, buf, 8) == 8;
    char reply[8];
    ok = ok && read_full(fd, reply, 8) && std::memcmp(reply, buf, 8) == 0;
    char eof = 0;
    ok = ok && ::read(fd, &eof, 1) == 0; // the peer closes first: its side keeps the TIME_WAIT
    ::close(fd);
    return ok;
}

// ---- the CPU-bound job ---------------------------------------------------------------------

std::uint64_t job_iters = 0; // the running scenario's: cfg.cpu_iters, or 0 (startup)

std::uint64_t hash_job(std::uint64_t seed) {
    std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (std::uint64_t i = 0; i < job_iters; ++i) {
        h ^= i;
        h *= 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h;
}

std::uint64_t cpu_reference = 0; // xor of every job's hash, computed once by the driver

/// One unit of work of a scenario: a request to the peer, or a hash. Returns the value the
/// checker compares (1 for a good request, the hash for a CPU job).
std::uint64_t do_job(bool cpu, std::uint64_t id) {
    return cpu ? hash_job(id) : static_cast<std::uint64_t>(blocking_request(id));
}

// ---- the models ----------------------------------------------------------------------------

/// Counts the answers a scenario got: good requests, or every job when the hashes match.
struct Tally {
    bool cpu;
    int jobs;
    std::uint64_t acc = 0;
    int good = 0;

    void add(std::uint64_t v) {
        if (cpu) {
            acc ^= v;
        } else if (v == 1) {
            ++good;
        }
    }

    int ok() const {
        if (cpu) {
            return acc == cpu_reference ? jobs : 0;
        }
        return good;
    }
};

void thread_per_job(bool cpu, int jobs, Result& r) {
    std::atomic<std::uint64_t> acc{0};
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(jobs));
    int created = 0;
    long kernel0 = kernel_kib();
    for (int i = 0; i < jobs; ++i) {
        try {
            threads.emplace_back([&, i] {
                std::uint64_t v = do_job(cpu, static_cast<std::uint64_t>(i));
                if (cpu) {
                    acc ^= v;
                } else if (v == 1) {
                    ++good;
                }
            });
            ++created;
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "models: thread %d: %s\n", i, e.what());
            break;
        }
    }
    // Every thread is up (and, in the I/O scenarios, waiting on the peer): what they hold in
    // the kernel, which VmHWM does not see. System-wide, so other tenants add noise.
    r.kernel_mib = static_cast<double>(kernel_kib() - kernel0) / 1024.0;
    for (auto& t : threads) {
        t.join();
    }
    Tally t{cpu, jobs};
    t.acc = acc.load();
    t.good = good.load();
    r.ok = t.ok();
    r.threads = created;
    r.concurrency = created;
}

/// A fixed pool of workers taking std::packaged_task jobs from one queue: submit() returns a
/// std::future (concurrent.futures.ThreadPoolExecutor.submit).
class Pool {
public:
    explicit Pool(int n) {
        for (int i = 0; i < n; ++i) {
            workers_.emplace_back([this] { work(); });
        }
    }

    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    ~Pool() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& w : workers_) {
            w.join();
        }
    }

    std::future<std::uint64_t> submit(std::function<std::uint64_t()> fn) {
        std::packaged_task<std::uint64_t()> task(std::move(fn));
        auto f = task.get_future();
        {
            std::lock_guard lock(mu_);
            queue_.push(std::move(task));
        }
        cv_.notify_one();
        return f;
    }

private:
    void work() {
        for (;;) {
            std::packaged_task<std::uint64_t()> task;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) {
                    return;
                }
                task = std::move(queue_.front());
                queue_.pop();
            }
            task();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::queue<std::packaged_task<std::uint64_t()>> queue_;
    bool stop_ = false;
    std::vector<std::thread> workers_;
};

void thread_pool(bool cpu, int jobs, int n, Result& r) {
    Tally t{cpu, jobs};
    {
        Pool pool(n);
        std::vector<std::future<std::uint64_t>> futures;
        futures.reserve(static_cast<std::size_t>(jobs));
        for (int i = 0; i < jobs; ++i) {
            futures.push_back(
                    pool.submit([cpu, i] { return do_job(cpu, static_cast<std::uint64_t>(i)); }));
        }
        for (auto& f : futures) {
            t.add(f.get());
        }
    }
    r.ok = t.ok();
    r.threads = n;
    r.concurrency = n;
}

/// What a worker process writes on the result pipe: a job's value, or (id == done_id) its
/// VmHWM in KiB as it exits. 16 bytes: a pipe write below PIPE_BUF is atomic.
struct Record {
    std::uint32_t id;
    std::uint32_t pad;
    std::uint64_t value;
};

constexpr std::uint32_t done_id = 0xffffffffU;

void process_pool(bool cpu, int jobs, int n, Result& r) {
    int tasks[2];
    int results[2];
    if (pipe2(tasks, O_CLOEXEC) != 0 || pipe2(results, O_CLOEXEC) != 0) {
        return;
    }
    fcntl(tasks[1], F_SETPIPE_SZ, 1 << 20);
    fcntl(results[1], F_SETPIPE_SZ, 1 << 20);
    std::vector<pid_t> workers;
    for (int w = 0; w < n; ++w) {
        pid_t pid = fork();
        if (pid == 0) {
            close(tasks[1]);
            close(results[0]);
            for (;;) {
                std::uint32_t id = 0;
                if (!read_full(tasks[0], reinterpret_cast<char*>(&id), sizeof id) ||
                    id == done_id) {
                    break;
                }
                Record rec{id, 0, do_job(cpu, id)};
                if (::write(results[1], &rec, sizeof rec) != sizeof rec) {
                    _exit(1);
                }
            }
            Record last{done_id, 0, static_cast<std::uint64_t>(status_kib("VmHWM"))};
            _exit(::write(results[1], &last, sizeof last) == sizeof last ? 0 : 1);
        }
        if (pid > 0) {
            workers.push_back(pid);
        }
    }
    close(tasks[0]);
    close(results[1]);
    // Submit every job, then the stop marks; the pipe holds them all (1 MiB, 4 bytes each).
    std::vector<std::uint32_t> ids;
    for (int i = 0; i < jobs; ++i) {
        ids.push_back(static_cast<std::uint32_t>(i));
    }
    for (std::size_t i = 0; i < workers.size(); ++i) {
        ids.push_back(done_id);
    }
    const char* p = reinterpret_cast<const char*>(ids.data());
    std::size_t left = ids.size() * sizeof(std::uint32_t);
    while (left > 0) {
        ssize_t w = ::write(tasks[1], p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        p += w;
        left -= static_cast<std::size_t>(w);
    }
    close(tasks[1]);
    Tally t{cpu, jobs};
    std::uint64_t workers_hwm_kib = 0;
    Record rec{};
    while (read_full(results[0], reinterpret_cast<char*>(&rec), sizeof rec)) {
        if (rec.id == done_id) {
            workers_hwm_kib += rec.value;
        } else {
            t.add(rec.value);
        }
    }
    close(results[0]);
    for (pid_t pid : workers) {
        int status = 0;
        waitpid(pid, &status, 0);
    }
    r.ok = t.ok();
    r.processes = 1 + static_cast<int>(workers.size());
    r.concurrency = static_cast<int>(workers.size());
    r.peak_mib += static_cast<double>(workers_hwm_kib) / 1024.0;
}

coring::Task<std::uint64_t> coring_request(std::uint64_t id) {
    try {
        std::string host = "127.0.0.1";
        auto [reader, writer] = co_await coring::open_connection(host, peer_port);
        std::string request(8, '\0');
        std::memcpy(request.data(), &id, 8);
        writer.write(request);
        co_await writer.drain();
        std::string reply = co_await reader.readexactly(8);
        std::string rest = co_await reader.read();
        writer.close();
        co_return reply == request&& rest.empty() ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "models: coring request %llu: %s\n",
                     static_cast<unsigned long long>(id),
                     e.what());
        co_return 0;
    }
}

/// The same request on the loop's socket operations (asyncio's loop.sock_connect/sock_sendall/
/// sock_recv_into): no stream objects, no buffers beyond the 8 bytes.
coring::Task<std::uint64_t> coring_sock_request(std::uint64_t id) {
    try {
        coring::Socket sock(AF_INET, SOCK_STREAM);
        coring::SocketAddress address = coring::SocketAddress::ipv4(INADDR_LOOPBACK, peer_port);
        co_await coring::sock_connect(sock, address);
        char request[8];
        std::memcpy(request, &id, 8);
        co_await coring::sock_sendall(sock, std::string_view(request, 8));
        char reply[9];
        std::size_t got = 0;
        for (;;) {
            std::span<char> room(reply + got, sizeof reply - got);
            std::size_t n = co_await coring::sock_recv_into(sock, room);
            if (n == 0) {
                break;
            }
            got += n;
            if (got == sizeof reply) {
                break;
            }
        }
        co_return got == 8 && std::memcmp(reply, request, 8) == 0 ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "models: coring socket request %llu: %s\n",
                     static_cast<unsigned long long>(id),
                     e.what());
        co_return 0;
    }
}

coring::Task<std::uint64_t> coring_hash_on_loop(std::uint64_t id) {
    co_return hash_job(id); // blocks the loop: what CPU-bound work does on an event loop
}

/// model "coring": every request a task on one loop; model "coring_to_thread" (cpu only): every
/// job sent to the default executor (asyncio.to_thread).
/// Sleeps 1 ms at a time until done, recording the worst oversleep: how long the loop was
/// unable to run anything else (asyncio's debug-mode slow callback, measured from outside).
coring::Task<> heartbeat(const bool* done, double* max_lag_ms) {
    *max_lag_ms = 0;
    while (!*done) {
        auto t0 = Clock::now();
        co_await coring::sleep(std::chrono::milliseconds(1));
        double lag = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() - 1.0;
        *max_lag_ms = std::max(*max_lag_ms, lag);
    }
}

coring::Task<int> coring_main(bool cpu, bool to_thread, bool sockets, int jobs, Result* r) {
    bool done = false;
    auto beat = coring::create_task(heartbeat(&done, &r->max_lag_ms));
    std::vector<coring::Task<std::uint64_t>> tasks;
    std::vector<coring::Future<std::uint64_t>> futures;
    tasks.reserve(static_cast<std::size_t>(jobs));
    for (int i = 0; i < jobs; ++i) {
        auto id = static_cast<std::uint64_t>(i);
        if (!cpu) {
            tasks.push_back(sockets ? coring_sock_request(id) : coring_request(id));
        } else if (to_thread) {
            futures.push_back(coring::to_thread(hash_job, id));
        } else {
            tasks.push_back(coring_hash_on_loop(id));
        }
    }
    std::vector<std::uint64_t> values;
    if (to_thread) {
        values = co_await coring::gather(std::move(futures));
    } else {
        values = co_await coring::gather(std::move(tasks));
    }
    done = true;
    co_await beat;
    Tally t{cpu, jobs};
    for (auto v : values) {
        t.add(v);
    }
    r->ok = t.ok();
    r->threads = thread_count() - 1;
    r->concurrency = to_thread ? r->threads : (cpu ? 1 : jobs);
    co_return 0;
}

/// Loop i of n's share of the requests (i, i + n, ...), on streams; adds its good answers to ok.
coring::Task<int> coring_slice(std::size_t i, std::size_t n, int jobs, std::atomic<int>* ok) {
    std::vector<coring::Task<std::uint64_t>> tasks;
    for (auto j = i; j < static_cast<std::size_t>(jobs); j += n) {
        tasks.push_back(coring_request(j));
    }
    std::vector<std::uint64_t> values = co_await coring::gather(std::move(tasks));
    int good = 0;
    for (auto v : values) {
        good += v == 1 ? 1 : 0;
    }
    *ok += good;
    co_return good;
}

/// model "coring_per_core": one loop per core (run_per_core), each with its share of the
/// requests.
void coring_per_core(int jobs, Result& r) {
    std::atomic<int> ok{0};
    unsigned n = std::max(1U, std::thread::hardware_concurrency());
    coring::LoopGroupOptions options;
    options.handle_signals = false;
    std::vector<int> per_loop = coring::run_per_core(
            n, [&](std::size_t i) { return coring_slice(i, n, jobs, &ok); }, options);
    r.ok = ok.load();
    r.threads = static_cast<int>(per_loop.size());
    r.concurrency = jobs;
}

// ---- the driver ----------------------------------------------------------------------------

struct Model {
    std::string name; // thread_per_conn, thread_pool_32, process_pool_32, coring, ...

    enum Kind {
        Threads,
        ThreadPool,
        ProcessPool,
        Coring,
        CoringSockets,
        CoringPerCore,
        CoringToThread
    } kind;

    int n = 0; // pool size
};

struct Scenario {
    std::string name;
    bool cpu; // jobs are hash_job calls, not requests
    int jobs;
    std::uint64_t iters = 0; // hash_job's iterations (0: a no-op job, for startup)
};

/// Runs one model on one scenario in a fresh process and returns what it measured.
Result run_model(const Scenario& s, const Model& m, bool& capped) {
    int jobs = s.jobs;
    capped = false;
    if (s.name == "connections" && (m.kind == Model::ThreadPool || m.kind == Model::ProcessPool)) {
        int cap = m.n * cfg.waves_cap;
        if (cap < jobs) {
            jobs = cap;
            capped = true;
        }
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        std::perror("pipe2");
        std::exit(2);
    }
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(150); // a hung model must not hang the benchmark
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        job_iters = s.iters;
        if (s.cpu && s.iters == 0) { // startup's no-op jobs: their reference costs nothing
            cpu_reference = 0;
            for (int i = 0; i < jobs; ++i) {
                cpu_reference ^= hash_job(static_cast<std::uint64_t>(i));
            }
        }
        Result r;
        r.requests = jobs;
        r.base_mib = static_cast<double>(status_kib("VmRSS")) / 1024.0;
        double cpu0 = cpu_seconds();
        auto t0 = Clock::now();
        switch (m.kind) {
        case Model::Threads:
            thread_per_job(s.cpu, jobs, r);
            break;
        case Model::ThreadPool:
            thread_pool(s.cpu, jobs, m.n, r);
            break;
        case Model::ProcessPool:
            process_pool(s.cpu, jobs, m.n, r);
            break;
        case Model::Coring:
        case Model::CoringSockets:
        case Model::CoringToThread:
            coring::run(coring_main(s.cpu,
                                    m.kind == Model::CoringToThread,
                                    m.kind == Model::CoringSockets,
                                    jobs,
                                    &r));
            break;
        case Model::CoringPerCore:
            coring_per_core(jobs, r);
            break;
        }
        r.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
        r.cpu_s = cpu_seconds() - cpu0;
        r.peak_mib += static_cast<double>(status_kib("VmHWM")) / 1024.0;
        bool sent = ::write(fds[1], &r, sizeof r) == sizeof r;
        _exit(sent ? 0 : 1);
    }
    close(fds[1]);
    double peer0 = process_cpu_seconds(peer_pid);
    long drops0 = listen_overflows();
    Result r;
    r.requests = jobs;
    if (!read_full(fds[0], reinterpret_cast<char*>(&r), sizeof r)) {
        std::fprintf(stderr, "models: %s %s: the run died\n", s.name.c_str(), m.name.c_str());
        r.ok = 0;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    r.peer_cpu_s = process_cpu_seconds(peer_pid) - peer0;
    r.listen_drops = listen_overflows() - drops0;
    return r;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    if (v.empty()) {
        return 0;
    }
    std::size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<int> parse_list(const char* s) {
    std::vector<int> out;
    for (const char* p = s; *p != '\0';) {
        char* end = nullptr;
        out.push_back(static_cast<int>(std::strtol(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
        if (end == p && *p != '\0') {
            break;
        }
    }
    return out;
}

int usage(const char* argv0) {
    std::fprintf(stderr,
                 "usage: %s [--rounds N] [--connections N] [--fanout N] [--delay-ms N]\n"
                 "       [--cpu-jobs N] [--cpu-iters N] [--thread-pools 32,64,256]\n"
                 "       [--process-pools 32,64] [--waves-cap N] [--only SCENARIO] [--csv FILE]\n"
                 "       [--model NAME]... [--smoke]\n",
                 argv0);
    return 2;
}

/// Raises the descriptor limit (the driver's children inherit it): each connection holds one.
void raise_nofile(int need) {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    auto want = static_cast<rlim_t>(need);
    if (rl.rlim_cur >= want) {
        return;
    }
    rlimit raised{want, std::max(want, rl.rlim_max)};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        raised = {rl.rlim_max, rl.rlim_max}; // not root: as far as the hard limit goes
        setrlimit(RLIMIT_NOFILE, &raised);
        std::fprintf(stderr,
                     "models: RLIMIT_NOFILE stays at %llu (wanted %d)\n",
                     static_cast<unsigned long long>(rl.rlim_max),
                     need);
    }
}

} // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::exit(usage(argv[0]));
            }
            return argv[++i];
        };
        if (a == "--rounds") {
            cfg.rounds = std::atoi(value());
        } else if (a == "--connections") {
            cfg.connections = std::atoi(value());
        } else if (a == "--fanout") {
            cfg.fanout = std::atoi(value());
        } else if (a == "--delay-ms") {
            cfg.delay_ms = std::atoi(value());
        } else if (a == "--cpu-jobs") {
            cfg.cpu_jobs = std::atoi(value());
        } else if (a == "--cpu-iters") {
            cfg.cpu_iters = std::strtoull(value(), nullptr, 10);
        } else if (a == "--thread-pools") {
            cfg.thread_pools = parse_list(value());
        } else if (a == "--process-pools") {
            cfg.process_pools = parse_list(value());
        } else if (a == "--waves-cap") {
            cfg.waves_cap = std::atoi(value());
        } else if (a == "--only") {
            cfg.only = value();
        } else if (a == "--model") {
            cfg.models.emplace_back(value());
        } else if (a == "--csv") {
            cfg.csv = value();
        } else if (a == "--smoke") {
            cfg.smoke = true;
            cfg.rounds = 1;
            cfg.connections = 50;
            cfg.fanout = 20;
            cfg.delay_ms = 10;
            cfg.cpu_jobs = 4;
            cfg.cpu_iters = 100'000;
            cfg.startup_jobs = 8;
            cfg.thread_pools = {4};
            cfg.process_pools = {2};
        } else {
            return usage(argv[0]);
        }
    }
    std::signal(SIGPIPE, SIG_IGN);
    // Per process: the peer and every model have their own descriptor table.
    raise_nofile(std::max(cfg.connections, cfg.fanout) + 1024);

    // The peer listens before anything forks, so every model knows its port. Several listeners
    // on one port (SO_REUSEPORT): each has its own accept queue of at most net.core.somaxconn
    // (4096 by default), and 10,000 connects at once would overflow one; a dropped SYN costs its
    // client a 1 s retransmission. The kernel spreads the connections by their address hash.
    std::vector<int> listeners;
    sockaddr_in a = peer_address();
    a.sin_port = 0;
    for (int i = 0; i < 4; ++i) {
        int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        socklen_t len = sizeof a;
        if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(lfd, 65535) != 0 ||
            getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            std::perror("models: listen");
            return 2;
        }
        listeners.push_back(lfd);
    }
    peer_port = ntohs(a.sin_port);
    pid_t peer = start_peer(listeners);
    std::string load_at_start = load_average();
    peer_pid = peer;

    job_iters = cfg.cpu_iters;
    for (int i = 0; i < cfg.cpu_jobs; ++i) {
        cpu_reference ^= hash_job(static_cast<std::uint64_t>(i));
    }

    // startup: each model starts (its threads, processes or loop), runs one no-op job per
    // worker and stops: what a short-lived use of the model costs.
    std::vector<Scenario> scenarios{{"connections", false, cfg.connections},
                                    {"fanout", false, cfg.fanout},
                                    {"cpu", true, cfg.cpu_jobs, cfg.cpu_iters},
                                    {"startup", true, cfg.startup_jobs, 0}};
    auto models_for = [&](const Scenario& s) {
        std::vector<Model> ms;
        ms.push_back({s.cpu ? "thread_per_job" : "thread_per_conn", Model::Threads, 0});
        std::vector<int> tp = cfg.thread_pools;
        std::vector<int> pp = cfg.process_pools;
        if (s.name == "cpu" &&
            !cfg.smoke) { // CPU-bound: a pool the size of the machine, as one would
            int cores = static_cast<int>(std::thread::hardware_concurrency());
            tp = {cores};
            pp = {cores};
        }
        for (int n : tp) {
            ms.push_back({"thread_pool_" + std::to_string(n), Model::ThreadPool, n});
        }
        for (int n : pp) {
            ms.push_back({"process_pool_" + std::to_string(n), Model::ProcessPool, n});
        }
        ms.push_back({s.cpu ? "coring_on_loop" : "coring", Model::Coring, 0});
        if (s.cpu) {
            ms.push_back({"coring_to_thread", Model::CoringToThread, 0});
        } else {
            ms.push_back({"coring_sockets", Model::CoringSockets, 0});
            ms.push_back({"coring_per_core", Model::CoringPerCore, 0});
        }
        return ms;
    };

    std::FILE* csv = cfg.csv.empty() ? nullptr : std::fopen(cfg.csv.c_str(), "w");
    if (csv != nullptr) {
        std::fprintf(csv,
                     "scenario,model,round,requests,ok,concurrency,threads,processes,wall_s,"
                     "projected_wall_s,cpu_s,peak_mib,base_mib,kib_per_inflight,kernel_mib,"
                     "peer_cpu_s,listen_drops,max_lag_ms,capped,delay_ms\n");
    }

    struct Key {
        std::string scenario, model;

        bool operator<(const Key& o) const {
            return std::tie(scenario, model) < std::tie(o.scenario, o.model);
        }
    };

    std::map<Key, std::vector<Result>> runs;
    std::map<Key, bool> capped_of;
    std::vector<Key> order;
    bool all_ok = true;
    for (int round = 1; round <= cfg.rounds; ++round) {
        for (const auto& s : scenarios) {
            if (!cfg.only.empty() && cfg.only != s.name) {
                continue;
            }
            for (const auto& m : models_for(s)) {
                if (!cfg.models.empty() &&
                    std::find(cfg.models.begin(), cfg.models.end(), m.name) == cfg.models.end()) {
                    continue;
                }
                bool capped = false;
                Result r = run_model(s, m, capped);
                double projected = capped ? r.wall_s * s.jobs / std::max(1, r.requests) : r.wall_s;
                double per = (r.peak_mib - r.base_mib) * 1024.0 / std::max(1, r.concurrency);
                std::fprintf(
                        stderr,
                        "models: round %d %-11s %-17s %5d/%-5d ok  wall %.3f s  cpu %.3f s  "
                        "peak %.1f MiB  threads %d  procs %d  peer cpu %.3f s  SYN drops %ld%s\n",
                        round,
                        s.name.c_str(),
                        m.name.c_str(),
                        r.ok,
                        r.requests,
                        r.wall_s,
                        r.cpu_s,
                        r.peak_mib,
                        r.threads,
                        r.processes,
                        r.peer_cpu_s,
                        r.listen_drops,
                        capped ? "  (capped)" : "");
                if (csv != nullptr) {
                    std::fprintf(csv,
                                 "%s,%s,%d,%d,%d,%d,%d,%d,%.4f,%.4f,%.4f,%.2f,%.2f,%.2f,%.2f,"
                                 "%.4f,%ld,%.2f,%d,%d\n",
                                 s.name.c_str(),
                                 m.name.c_str(),
                                 round,
                                 r.requests,
                                 r.ok,
                                 r.concurrency,
                                 r.threads,
                                 r.processes,
                                 r.wall_s,
                                 projected,
                                 r.cpu_s,
                                 r.peak_mib,
                                 r.base_mib,
                                 per,
                                 r.kernel_mib,
                                 r.peer_cpu_s,
                                 r.listen_drops,
                                 r.max_lag_ms,
                                 capped ? 1 : 0,
                                 s.cpu ? 0 : cfg.delay_ms);
                    std::fflush(csv);
                }
                Key k{s.name, m.name};
                if (runs.find(k) == runs.end()) {
                    order.push_back(k);
                }
                runs[k].push_back(r);
                capped_of[k] = capped;
                all_ok = all_ok && r.ok == r.requests;
            }
        }
    }
    kill(peer, SIGKILL);
    waitpid(peer, nullptr, 0);
    if (csv != nullptr) {
        std::fclose(csv);
    }

    std::printf("Medians of %d round(s); connections %d, fanout %d, peer delay %d ms, cpu %d jobs "
                "x %llu iterations; %u cores; load average %s at start, %s at end.\n\n",
                cfg.rounds,
                cfg.connections,
                cfg.fanout,
                cfg.delay_ms,
                cfg.cpu_jobs,
                static_cast<unsigned long long>(cfg.cpu_iters),
                std::thread::hardware_concurrency(),
                load_at_start.c_str(),
                load_average().c_str());
    std::printf(
            "| scenario | model | done | wall s | wall s (all) | CPU s | CPU ms/req | peak MiB | "
            "KiB/in-flight | kernel MiB | threads | procs | peer CPU s | SYN drops | loop stall ms "
            "|\n");
    std::printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
                "| ---: | ---: | ---: |\n");
    for (const auto& k : order) {
        const auto& rs = runs[k];
        std::vector<double> wall, cpu, peak, per, cpu_per, kernel, peer_cpu, lag;
        int ok = rs.front().ok;
        long drops = 0;
        for (const auto& r : rs) {
            wall.push_back(r.wall_s);
            cpu.push_back(r.cpu_s);
            peak.push_back(r.peak_mib);
            per.push_back((r.peak_mib - r.base_mib) * 1024.0 / std::max(1, r.concurrency));
            cpu_per.push_back(r.cpu_s * 1000.0 / std::max(1, r.requests));
            kernel.push_back(r.kernel_mib);
            peer_cpu.push_back(r.peer_cpu_s);
            lag.push_back(r.max_lag_ms);
            ok = std::min(ok, r.ok);
            drops = std::max(drops, r.listen_drops);
        }
        int total = 0;
        for (const auto& s : scenarios) {
            if (s.name == k.scenario) {
                total = s.jobs;
            }
        }
        const Result& r0 = rs.front();
        double w = median(wall);
        bool capped = capped_of[k];
        char kernel_buf[32] = "";
        if (r0.threads > 0 && k.model.rfind("thread_per", 0) == 0) {
            std::snprintf(kernel_buf, sizeof kernel_buf, "%.1f", median(kernel));
        } else {
            std::snprintf(kernel_buf, sizeof kernel_buf, "-");
        }
        std::string kernel_text = kernel_buf;
        char lag_buf[32] = "-";
        if (r0.max_lag_ms >= 0) {
            std::snprintf(lag_buf, sizeof lag_buf, "%.1f", median(lag));
        }
        std::printf("| %s | %s | %d/%d%s | %.4f | %.2f%s | %.3f | %.3f | %.1f | %.1f | %s | %d | "
                    "%d | %.2f | %ld | %s |\n",
                    k.scenario.c_str(),
                    k.model.c_str(),
                    ok,
                    r0.requests,
                    capped ? " (capped)" : "",
                    w,
                    capped ? w * total / std::max(1, r0.requests) : w,
                    capped ? " (projected)" : "",
                    median(cpu),
                    median(cpu_per),
                    median(peak),
                    median(per),
                    kernel_text.c_str(),
                    r0.threads,
                    r0.processes,
                    median(peer_cpu),
                    drops,
                    lag_buf);
    }
    if (!all_ok) {
        std::printf("\nFAILED: some model did not complete every request (see stderr)\n");
        return 1;
    }
    return 0;
}
