/*
 * capture-probe: a minimal V4L2 mmap capture loop that logs what the kernel does to it, used to
 * find out (and document in README.md) how vivid behaves when it is "unplugged".
 *
 *   capture-probe DEVICE SECONDS [WIDTH HEIGHT FOURCC [FPS]]
 *
 * Streams from DEVICE (single- or multi-planar) for SECONDS. Every error (poll flags other than
 * POLLIN, a failing ioctl with its errno, a V4L2_BUF_FLAG_ERROR buffer) is printed with the
 * time since start. After an error it closes the device and tries to open it again every
 * 100 ms, logging how long that took, then streams again. Prints frames per second once a
 * second ("fps N") and a summary at the end. Exit status 0. With FPS, sets the frame interval
 * with VIDIOC_S_PARM (buffer type of the node; logs what G_PARM/S_PARM answer).
 * With CAPTURE_PROBE_BLOCKING=1 in the environment, the device is opened without O_NONBLOCK
 * and VIDIOC_DQBUF is called without poll(), so it blocks in the kernel.
 *
 * Build (static, so it needs no libraries in the guest):
 *   gcc -O2 -static -o target/vivid-vm/capture-probe tools/vivid-vm/capture-probe.c
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NBUF 4

static struct timespec t0;
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
}
#define LOG(...) do { printf("[%7.3f] ", now()); printf(__VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

static const char *errname(int e) {
    switch (e) {
    case ENODEV: return "ENODEV";
    case EPIPE: return "EPIPE";
    case EIO: return "EIO";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case ENOENT: return "ENOENT";
    case ENXIO: return "ENXIO";
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ENOTTY: return "ENOTTY";
    default: return "?";
    }
}

struct cam {
    int fd;
    int mplane;
    enum v4l2_buf_type type;
    void *mem[NBUF];
    size_t len[NBUF];
    int nbuf;
};

static int xioctl(int fd, unsigned long req, void *arg) {
    int r;
    do r = ioctl(fd, req, arg); while (r < 0 && errno == EINTR);
    return r;
}

static void cam_close(struct cam *c) {
    for (int i = 0; i < c->nbuf; i++)
        if (c->mem[i] && c->mem[i] != MAP_FAILED) munmap(c->mem[i], c->len[i]);
    c->nbuf = 0;
    if (c->fd >= 0) {
        if (close(c->fd) < 0) LOG("close: %s (%s)", strerror(errno), errname(errno));
    }
    c->fd = -1;
}

/* Opens and starts streaming; returns 0, or -1 with the failing step logged when loud. */
static unsigned want_fps;
static int blocking;

static void set_fps(struct cam *c, int loud) {
    struct v4l2_streamparm parm;
    memset(&parm, 0, sizeof parm);
    parm.type = c->type;
    parm.parm.capture.timeperframe.numerator = 1;
    parm.parm.capture.timeperframe.denominator = want_fps;
    if (xioctl(c->fd, VIDIOC_S_PARM, &parm) < 0) {
        if (loud) LOG("VIDIOC_S_PARM (type %d): %s (%s)", c->type, strerror(errno), errname(errno));
        return;
    }
    memset(&parm, 0, sizeof parm);
    parm.type = c->type;
    if (xioctl(c->fd, VIDIOC_G_PARM, &parm) < 0) {
        if (loud) LOG("VIDIOC_G_PARM (type %d): %s (%s)", c->type, strerror(errno), errname(errno));
        return;
    }
    if (loud) LOG("frame interval %u/%u s", parm.parm.capture.timeperframe.numerator,
                  parm.parm.capture.timeperframe.denominator);
}

static int cam_start(struct cam *c, const char *dev, unsigned w, unsigned h, unsigned fourcc, int loud) {
    struct v4l2_capability cap;
    c->fd = open(dev, blocking ? O_RDWR : O_RDWR | O_NONBLOCK);
    if (c->fd < 0) {
        if (loud) LOG("open %s: %s (%s)", dev, strerror(errno), errname(errno));
        return -1;
    }
#define STEP(call, name) if ((call) < 0) { int e = errno; if (loud) LOG("%s: %s (%s)", name, strerror(e), errname(e)); cam_close(c); errno = e; return -1; }
    memset(&cap, 0, sizeof cap);
    STEP(xioctl(c->fd, VIDIOC_QUERYCAP, &cap), "VIDIOC_QUERYCAP");
    unsigned caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
    c->mplane = !(caps & V4L2_CAP_VIDEO_CAPTURE) && (caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE);
    c->type = c->mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
    if (w) {
        struct v4l2_format f;
        memset(&f, 0, sizeof f);
        f.type = c->type;
        if (c->mplane) {
            f.fmt.pix_mp.width = w; f.fmt.pix_mp.height = h; f.fmt.pix_mp.pixelformat = fourcc;
            f.fmt.pix_mp.field = V4L2_FIELD_NONE;
        } else {
            f.fmt.pix.width = w; f.fmt.pix.height = h; f.fmt.pix.pixelformat = fourcc;
            f.fmt.pix.field = V4L2_FIELD_NONE;
        }
        STEP(xioctl(c->fd, VIDIOC_S_FMT, &f), "VIDIOC_S_FMT");
        if (loud)
            LOG("format %ux%u", c->mplane ? f.fmt.pix_mp.width : f.fmt.pix.width,
                c->mplane ? f.fmt.pix_mp.height : f.fmt.pix.height);
    }
    if (want_fps) set_fps(c, loud);
    struct v4l2_requestbuffers rb;
    memset(&rb, 0, sizeof rb);
    rb.count = NBUF; rb.type = c->type; rb.memory = V4L2_MEMORY_MMAP;
    STEP(xioctl(c->fd, VIDIOC_REQBUFS, &rb), "VIDIOC_REQBUFS");
    for (unsigned i = 0; i < rb.count && i < NBUF; i++) {
        struct v4l2_buffer b;
        struct v4l2_plane planes[VIDEO_MAX_PLANES];
        memset(&b, 0, sizeof b);
        memset(planes, 0, sizeof planes);
        b.type = c->type; b.memory = V4L2_MEMORY_MMAP; b.index = i;
        if (c->mplane) { b.m.planes = planes; b.length = VIDEO_MAX_PLANES; }
        STEP(xioctl(c->fd, VIDIOC_QUERYBUF, &b), "VIDIOC_QUERYBUF");
        /* Only plane 0 is mapped; enough to stream. */
        c->len[i] = c->mplane ? planes[0].length : b.length;
        off_t off = c->mplane ? planes[0].m.mem_offset : b.m.offset;
        c->mem[i] = mmap(NULL, c->len[i], PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, off);
        c->nbuf = i + 1;
        STEP(c->mem[i] == MAP_FAILED ? -1 : 0, "mmap");
        STEP(xioctl(c->fd, VIDIOC_QBUF, &b), "VIDIOC_QBUF");
    }
    STEP(xioctl(c->fd, VIDIOC_STREAMON, &c->type), "VIDIOC_STREAMON");
#undef STEP
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 6 && argc != 7) {
        fprintf(stderr, "usage: capture-probe DEVICE SECONDS [WIDTH HEIGHT FOURCC [FPS]]\n");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *dev = argv[1];
    double secs = atof(argv[2]);
    unsigned w = 0, h = 0, fourcc = 0;
    if (argc == 7) want_fps = atoi(argv[6]);
    blocking = getenv("CAPTURE_PROBE_BLOCKING") && atoi(getenv("CAPTURE_PROBE_BLOCKING"));
    if (argc >= 6) {
        w = atoi(argv[3]); h = atoi(argv[4]);
        fourcc = v4l2_fourcc(argv[5][0], argv[5][1], argv[5][2], argv[5][3]);
    }
    struct cam c = { .fd = -1 };
    if (cam_start(&c, dev, w, h, fourcc, 1) < 0) return 1;
    LOG("streaming %s (%s%s)", dev, c.mplane ? "multi-planar" : "single-planar",
        blocking ? ", blocking DQBUF" : ", poll + non-blocking DQBUF");
    long frames = 0, total = 0, errors = 0, reopens = 0;
    double sec_start = now(), lost_at = -1;
    while (now() < secs) {
        if (c.fd < 0) {
            /* Unplugged: try to come back every 100 ms; log only the first failure of a kind. */
            static int last_errno = 0;
            if (cam_start(&c, dev, w, h, fourcc, 0) == 0) {
                LOG("reopened %s after %.2f s", dev, now() - lost_at);
                reopens++;
                last_errno = 0;
            } else {
                if (errno != last_errno) LOG("reopen: %s (%s)", strerror(errno), errname(errno));
                last_errno = errno;
                usleep(100000);
            }
            continue;
        }
        struct pollfd p = { .fd = c.fd, .events = POLLIN | POLLPRI };
        int r = 1;
        if (blocking) p.revents = POLLIN;
        else r = poll(&p, 1, 1000);
        int broken = 0;
        if (r < 0) {
            LOG("poll: %s (%s)", strerror(errno), errname(errno));
            broken = 1;
        } else if (r == 0) {
            LOG("poll: timeout (1 s, no frame)");
        } else {
            if (p.revents & ~POLLIN)
                LOG("poll revents 0x%x:%s%s%s%s%s", p.revents, p.revents & POLLIN ? " POLLIN" : "",
                    p.revents & POLLPRI ? " POLLPRI" : "", p.revents & POLLERR ? " POLLERR" : "",
                    p.revents & POLLHUP ? " POLLHUP" : "", p.revents & POLLNVAL ? " POLLNVAL" : "");
            if (p.revents & (POLLIN | POLLERR)) {
                struct v4l2_buffer b;
                struct v4l2_plane planes[VIDEO_MAX_PLANES];
                memset(&b, 0, sizeof b);
                b.type = c.type; b.memory = V4L2_MEMORY_MMAP;
                if (c.mplane) { b.m.planes = planes; b.length = VIDEO_MAX_PLANES; }
                if (xioctl(c.fd, VIDIOC_DQBUF, &b) < 0) {
                    LOG("VIDIOC_DQBUF: %s (%s)", strerror(errno), errname(errno));
                    broken = errno != EAGAIN;
                } else {
                    if (b.flags & V4L2_BUF_FLAG_ERROR) LOG("buffer %u seq %u has V4L2_BUF_FLAG_ERROR", b.index, b.sequence);
                    frames++; total++;
                    if (xioctl(c.fd, VIDIOC_QBUF, &b) < 0) {
                        LOG("VIDIOC_QBUF: %s (%s)", strerror(errno), errname(errno));
                        broken = 1;
                    }
                }
            } else if (p.revents & (POLLHUP | POLLNVAL)) {
                broken = 1;
            }
        }
        if (broken) {
            errors++;
            /* What do other ioctls say now? */
            struct v4l2_capability cap;
            if (xioctl(c.fd, VIDIOC_QUERYCAP, &cap) < 0)
                LOG("VIDIOC_QUERYCAP: %s (%s)", strerror(errno), errname(errno));
            else
                LOG("VIDIOC_QUERYCAP: ok");
            if (xioctl(c.fd, VIDIOC_STREAMOFF, &c.type) < 0)
                LOG("VIDIOC_STREAMOFF: %s (%s)", strerror(errno), errname(errno));
            LOG("closing the device");
            lost_at = now();
            cam_close(&c);
        }
        if (now() - sec_start >= 1.0) {
            LOG("fps %.1f", frames / (now() - sec_start));
            frames = 0;
            sec_start = now();
        }
    }
    if (c.fd >= 0) {
        xioctl(c.fd, VIDIOC_STREAMOFF, &c.type);
        cam_close(&c);
    }
    LOG("done: %ld frames, %ld errors, %ld reopens", total, errors, reopens);
    return 0;
}
