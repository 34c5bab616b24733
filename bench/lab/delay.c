/* delay.c: the lab's stand-in for netem (this kernel has no sch_netem): a constant one-way delay and
 * random loss for the packets that cross one TUN device. The lab runs one process per direction in its
 * "internet" namespace and steers every packet that comes in from a router into that direction's
 * device with policy routing; this program holds each packet for the delay, then writes it back into
 * the same device, where the kernel routes it on as if it had just arrived.
 *
 * Design, and why:
 * - One FIFO and one constant delay, so packets are never reordered (like netem without jitter).
 * - GSO pass-through: the device is opened with a virtio-net header (IFF_VNET_HDR) and TSO offloads, so
 *   the kernel hands over a TCP super-packet (up to 64 KiB, as a sender's TSO or GRO built it) in one
 *   read and takes it back in one write. One syscall then moves ~40 segments instead of one: the
 *   per-packet syscall is what limits a forwarder like this. With loss on, the offloads are off, so
 *   every read is one wire-size packet and TCP and UDP lose the same share of packets (dropping a
 *   super-packet would drop up to 44 segments at once).
 * - Batching: every wake-up reads until the device is empty (at most READ_BATCH packets), stamping the
 *   batch with one clock reading, and writes every packet that is due; one ppoll() with a
 *   nanosecond timeout waits for whichever comes first, the next due time or the next packet.
 * - Memory: one byte ring of variable-size records (header + packet, 16-byte aligned), so small packets
 *   take small room and a queue of a few hundred MB/s x the delay fits. A full ring drops at the tail
 *   and counts it.
 * - Bounded: --max-seconds; SIGTERM/SIGINT end it; SIGUSR1 prints the counters. It prints
 *   `ready DEV` once the device exists and one `stats ...` line at the end (and on SIGUSR1).
 *
 * Measured ceiling: plain TCP from A to B through both NATs at RTT 40 ms, both forwarders running,
 * `npx node dist/bench/lab/ceiling.js` (iperf3, 8 s per figure; --node: a Node TCP sender), MB/s =
 * 10^6 B/s, on 2 cores that another lab's experiments kept busy (1-minute load 4-10), single runs:
 *
 *                               1 stream                8 streams
 *   GSO pass-through (no loss)  81 / 71 / 77 / 74       527 / 274 / 396 / 452
 *   per packet (any loss)       41 / 29 / 33 / 52        55 /  35 /  49 / 103
 *   no forwarder (baseline)    803 / 553 / 974 / 1281   698 / 471 / 657 / 629
 *   (iperf3 at load ~5 / ~8 / ~6, then the Node sender at load ~5)
 *
 * One stream is bound by the hosts' 4 MiB tcp_wmem at this RTT, not by the forwarder. Per packet the
 * two processes are CPU-bound (one read and one write per 1.5 KB). In an interleaved run at load ~9.5
 * the shared netlab's ntl_delay.c did 21-29 / 30-62 where this one did 46 / 55 per packet and 72 / 390
 * with GSO. A DataChannel's datagrams are single packets: for it the per-packet row is the ceiling,
 * well above the 15-45 MB/s it reaches here. More in bench/lab/README.md.
 *
 *   cc -O2 -o delay delay.c
 *   delay --dev NAME --delay-ms MS [--loss-pct P] [--queue-mb N] [--max-seconds S]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* the largest packet a read can return: a 64 KiB GSO super-packet plus the virtio-net header */
#define MAX_PACKET (65536 + 256)
/* a record: this header, then the packet (virtio-net header included), padded to 16 bytes */
struct rec { int64_t due_ns; uint32_t len; uint32_t wrap; };
#define REC_MAX (sizeof(struct rec) + MAX_PACKET)
#define ALIGN16(n) (((n) + 15) & ~(size_t)15)
/* reads per wake-up before the due packets get their turn again */
#define READ_BATCH 256

static volatile sig_atomic_t stop, want_stats;
static void on_stop(int s) { (void)s; stop = 1; }
static void on_usr1(int s) { (void)s; want_stats = 1; }

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* xorshift64*: a uniform double in [0, 1) */
static uint64_t rng;
static double urand(void) {
  rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
  return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* The ring: records live in [head, tail) with at most one wrap; `count` tells empty from full. A record
 * that would not fit before the end leaves a wrap marker and starts again at 0. */
static char *ring;
static size_t ring_size, head, tail;
static long count;

static struct rec *at(size_t off) { return (struct rec *)(ring + off); }

/* room for one record of up to REC_MAX bytes at the tail, or NULL when the ring is full */
static struct rec *reserve(void) {
  if (count == 0) head = tail = 0;
  if (count == 0 || tail > head) {
    if (ring_size - tail >= REC_MAX) return at(tail);
    if (head > REC_MAX) { /* wrap: mark the rest of the end as unused */
      if (ring_size - tail >= sizeof(struct rec)) at(tail)->wrap = 1;
      tail = 0;
      return at(tail);
    }
    return NULL;
  }
  return head - tail > REC_MAX ? at(tail) : NULL;
}

static void commit(struct rec *r, uint32_t len, int64_t due) {
  r->due_ns = due; r->len = len; r->wrap = 0;
  tail += ALIGN16(sizeof(struct rec) + len);
  count++;
}

static struct rec *oldest(void) {
  if (count == 0) return NULL;
  if (ring_size - head < sizeof(struct rec) || at(head)->wrap) head = 0;
  return at(head);
}

static void pop(struct rec *r) {
  head += ALIGN16(sizeof(struct rec) + r->len);
  count--;
}

static uint64_t n_in, n_out, n_drop_queue, n_drop_loss, n_write_err, bytes_in, bytes_out;
static long max_count;
static void print_stats(void) {
  printf("stats in=%llu out=%llu drop_queue=%llu drop_loss=%llu write_err=%llu bytes_in=%llu bytes_out=%llu max_queue=%ld\n",
         (unsigned long long)n_in, (unsigned long long)n_out, (unsigned long long)n_drop_queue,
         (unsigned long long)n_drop_loss, (unsigned long long)n_write_err, (unsigned long long)bytes_in,
         (unsigned long long)bytes_out, max_count);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *dev = NULL;
  double delay_ms = -1, loss_pct = 0, max_seconds = 7200, queue_mb = 64;
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) { fprintf(stderr, "missing value for %s\n", a); return 2; }
    if (!strcmp(a, "--dev")) dev = v;
    else if (!strcmp(a, "--delay-ms")) delay_ms = atof(v);
    else if (!strcmp(a, "--loss-pct")) loss_pct = atof(v);
    else if (!strcmp(a, "--queue-mb")) queue_mb = atof(v);
    else if (!strcmp(a, "--max-seconds")) max_seconds = atof(v);
    else { fprintf(stderr, "unknown flag %s\n", a); return 2; }
  }
  if (!dev || delay_ms < 0 || loss_pct < 0 || loss_pct > 100 || queue_mb < 1 || strlen(dev) >= IFNAMSIZ) {
    fprintf(stderr, "usage: %s --dev NAME --delay-ms MS [--loss-pct P] [--queue-mb N] [--max-seconds S]\n", argv[0]);
    return 2;
  }

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (fd < 0) { perror("/dev/net/tun"); return 1; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  strncpy(ifr.ifr_name, dev, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { perror("TUNSETIFF"); return 1; }
  int hdr_size = sizeof(struct virtio_net_hdr);
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_size) < 0) { perror("TUNSETVNETHDRSZ"); return 1; }
  /* offloads only without loss (see the header); a write with the header still carries its checksum
   * state, so the kernel never has to re-check what it handed us */
  unsigned offload = loss_pct > 0 ? 0 : (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
  if (ioctl(fd, TUNSETOFFLOAD, offload) < 0) { perror("TUNSETOFFLOAD"); return 1; }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  /* the default 50 us timer slack would add up to that much to every wake-up */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

  rng = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
  if (!rng) rng = 1;
  ring_size = ALIGN16((size_t)(queue_mb * 1024 * 1024));
  if (ring_size < 4 * REC_MAX) ring_size = 4 * REC_MAX;
  ring = malloc(ring_size); /* pages are touched only as the queue grows: an idle lab costs no memory */
  static char scratch[REC_MAX];
  if (!ring) { fprintf(stderr, "out of memory\n"); return 1; }
  const int64_t delay = (int64_t)(delay_ms * 1e6);
  const double loss = loss_pct / 100.0;
  const int64_t end = now_ns() + (int64_t)(max_seconds * 1e9);

  printf("ready %s\n", dev);
  fflush(stdout);
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  while (!stop) {
    if (want_stats) { want_stats = 0; print_stats(); }
    int64_t now = now_ns();
    if (now >= end) break;
    struct rec *r;
    while ((r = oldest()) && r->due_ns <= now) {
      ssize_t w = write(fd, (char *)(r + 1), r->len);
      if (w < 0) n_write_err++; else { n_out++; bytes_out += r->len - (uint32_t)hdr_size; }
      pop(r);
    }
    r = oldest();
    int64_t wait = r ? r->due_ns - now : 1000000000LL;
    if (wait < 0) wait = 0;
    struct timespec ts = { .tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL };
    int n = ppoll(&pfd, 1, &ts, NULL);
    if (n < 0) { if (errno == EINTR) continue; perror("ppoll"); break; }
    if (n == 0) continue;
    const int64_t due = now_ns() + delay;
    for (int k = 0; k < READ_BATCH; k++) {
      struct rec *slot = reserve();
      char *dst = slot ? (char *)(slot + 1) : scratch;
      ssize_t got = read(fd, dst, MAX_PACKET);
      if (got < 0) break; /* EAGAIN: the device is empty */
      n_in++;
      bytes_in += (uint64_t)got - (uint64_t)hdr_size;
      if (loss > 0 && urand() < loss) { n_drop_loss++; continue; }
      if (!slot) { n_drop_queue++; continue; }
      commit(slot, (uint32_t)got, due);
    }
    if (count > max_count) max_count = count;
  }
  print_stats();
  return 0;
}
