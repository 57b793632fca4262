/*
 * castoff-probe: the health check castoff adds to an image when an app configures
 * `healthcheck = { http = "/healthz", port = 8080 }` or `{ tcp = 8080 }`. Docker runs a
 * HEALTHCHECK inside the container, and a `scratch` image has no shell, wget or curl: this is
 * the one program such a check needs. See README.md beside this file.
 *
 *   castoff-probe [--timeout SECONDS] http PORT PATH
 *       GET PATH from 127.0.0.1:PORT (from [::1]:PORT when 127.0.0.1 refuses); healthy when
 *       the status is 200-399, as Kubernetes' httpGet probe decides
 *   castoff-probe [--timeout SECONDS] tcp PORT
 *       healthy when a TCP connection to 127.0.0.1:PORT (then [::1]:PORT) succeeds
 *
 * Exit 0: healthy, 1: unhealthy, 2: bad arguments. One line on stdout says what was seen;
 * bad arguments are explained on stderr. SECONDS (default 30, 1-86400) bounds the whole
 * probe. Nothing the server sends is printed: only the three digits of its status, once they
 * are known to be digits; at most MAX_STATUS_LINE bytes of the answer are read.
 *
 * No stdio: write(2) alone keeps the static binary a few KiB.
 */

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HEALTHY = 0, UNHEALTHY = 1, USAGE = 2 };

#define DEFAULT_TIMEOUT 30u
#define MAX_TIMEOUT 86400u
/* The longest PATH accepted: the request and the printed line stay in fixed buffers. */
#define MAX_PATH 2048u
/* How much of the answer may precede the end of the status line. */
#define MAX_STATUS_LINE 4096u
#define LINE_CAPACITY (MAX_PATH + 128u)

static const char USAGE_TEXT[] =
    "usage: castoff-probe [--timeout SECONDS] http PORT PATH\n"
    "       castoff-probe [--timeout SECONDS] tcp PORT\n";

/* A line being put together, cut off (never overrun) at its capacity. */
struct text {
    size_t length;
    char bytes[LINE_CAPACITY];
};

static void add_bytes(struct text *text, const char *bytes, size_t count) {
    size_t room = sizeof text->bytes - text->length;
    if (count > room) {
        count = room;
    }
    memcpy(text->bytes + text->length, bytes, count);
    text->length += count;
}

static void add(struct text *text, const char *string) {
    add_bytes(text, string, strlen(string));
}

static void add_number(struct text *text, unsigned long number) {
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + number % 10);
        number /= 10;
    } while (number != 0);
    while (count > 0) {
        add_bytes(text, &digits[--count], 1);
    }
}

static void write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t written = write(fd, bytes, count);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            return;
        }
        bytes += written;
        count -= (size_t)written;
    }
}

/*
 * What the probe reports on, per address family: index 0 is 127.0.0.1, 1 is [::1].
 * `subject` is `http://127.0.0.1:8080/healthz` or `tcp 127.0.0.1:8080`; `expired` is the
 * whole line the alarm handler prints, made before the alarm is set.
 */
static struct text subject[2];
static struct text expired[2];
static volatile sig_atomic_t family_index;

static void on_alarm(int signal_number) {
    (void)signal_number;
    const struct text *line = &expired[family_index];
    write_all(STDOUT_FILENO, line->bytes, line->length);
    _exit(UNHEALTHY);
}

/* Prints `<subject>: <what>` and returns `status`, the alarm cancelled first. */
static int report(int status, const char *what, const char *detail) {
    alarm(0);
    struct text line = {0};
    const struct text *about = &subject[family_index];
    add_bytes(&line, about->bytes, about->length);
    add(&line, ": ");
    add(&line, what);
    if (detail != NULL) {
        add(&line, detail);
    }
    add(&line, "\n");
    write_all(STDOUT_FILENO, line.bytes, line.length);
    return status;
}

static int usage(const char *problem) {
    struct text line = {0};
    add(&line, "castoff-probe: ");
    add(&line, problem);
    add(&line, "\n");
    add(&line, USAGE_TEXT);
    write_all(STDERR_FILENO, line.bytes, line.length);
    return USAGE;
}

/* A decimal number from `low` to `high`: digits only, no sign, at most 6 of them. */
static int parse_number(const char *arg, unsigned long low, unsigned long high,
                        unsigned long *number) {
    unsigned long value = 0;
    size_t count = 0;
    for (; arg[count] != '\0'; count++) {
        if (arg[count] < '0' || arg[count] > '9' || count >= 6) {
            return 0;
        }
        value = value * 10 + (unsigned long)(arg[count] - '0');
    }
    if (count == 0 || value < low || value > high) {
        return 0;
    }
    *number = value;
    return 1;
}

/* An absolute path of printable bytes: no space, no control character, not too long. */
static int valid_path(const char *path) {
    if (path[0] != '/') {
        return 0;
    }
    size_t count = 0;
    for (; path[count] != '\0'; count++) {
        unsigned char byte = (unsigned char)path[count];
        if (byte <= ' ' || byte == 0x7f || count >= MAX_PATH) {
            return 0;
        }
    }
    return 1;
}

/* errno as a few words; the number for anything unexpected. */
static const char *reason(int error, struct text *scratch) {
    switch (error) {
    case ECONNREFUSED:
        return "connection refused";
    case ECONNRESET:
        return "connection reset";
    case ECONNABORTED:
        return "connection aborted";
    case EPIPE:
        return "connection closed";
    case ETIMEDOUT:
        return "timed out";
    case ENETUNREACH:
        return "network unreachable";
    case EHOSTUNREACH:
        return "host unreachable";
    case EADDRNOTAVAIL:
        return "address not available";
    case EAFNOSUPPORT:
        return "address family not supported";
    case EACCES:
    case EPERM:
        return "permission denied";
    case EMFILE:
    case ENFILE:
        return "too many open files";
    case ENOMEM:
    case ENOBUFS:
        return "out of memory";
    default:
        scratch->length = 0;
        add(scratch, "error ");
        add_number(scratch, (unsigned long)error);
        add_bytes(scratch, "", 1);
        scratch->bytes[sizeof scratch->bytes - 1] = '\0';
        return scratch->bytes;
    }
}

/* A connected socket to the loopback address of `family`, or -1 with `*error` set. */
static int dial(int family, unsigned short port, int *error) {
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *error = errno;
        return -1;
    }
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    struct sockaddr *address;
    socklen_t size;
    if (family == AF_INET) {
        memset(&v4, 0, sizeof v4);
        v4.sin_family = AF_INET;
        v4.sin_port = htons(port);
        v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address = (struct sockaddr *)&v4;
        size = sizeof v4;
    } else {
        memset(&v6, 0, sizeof v6);
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(port);
        v6.sin6_addr.s6_addr[15] = 1;
        address = (struct sockaddr *)&v6;
        size = sizeof v6;
    }
    if (connect(fd, address, size) != 0) {
        *error = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * 127.0.0.1 first; [::1] only when 127.0.0.1 refused (a server listening on [::1] alone).
 * When both fail, the IPv4 failure is the one reported.
 */
static int connect_loopback(unsigned short port, int *error) {
    int fd = dial(AF_INET, port, error);
    if (fd < 0 && *error == ECONNREFUSED) {
        int error6 = 0;
        fd = dial(AF_INET6, port, &error6);
        if (fd >= 0) {
            family_index = 1;
        }
    }
    return fd;
}

/* `HTTP/d.d SP ddd [SP reason]`, the line without its CR LF: the status, or -1. */
static int status_of(const char *line, size_t length) {
    if (length > 0 && line[length - 1] == '\r') {
        length--;
    }
    if (length < 12 || memcmp(line, "HTTP/", 5) != 0) {
        return -1;
    }
    const char *version = line + 5;
    if (version[0] < '0' || version[0] > '9' || version[1] != '.' || version[2] < '0' ||
        version[2] > '9' || version[3] != ' ') {
        return -1;
    }
    const char *code = line + 9;
    int status = 0;
    for (int i = 0; i < 3; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return -1;
        }
        status = status * 10 + (code[i] - '0');
    }
    if (length > 12 && code[3] != ' ') {
        return -1;
    }
    return status;
}

static int probe_http(int fd, const char *port_text, const char *path) {
    static char request[MAX_PATH + 256u];
    struct text scratch;
    size_t length = 0;
    const char *parts[] = {"GET ",
                           path,
                           " HTTP/1.0\r\nHost: localhost:",
                           port_text,
                           "\r\nUser-Agent: castoff-probe\r\nConnection: close\r\n\r\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t count = strlen(parts[i]);
        memcpy(request + length, parts[i], count);
        length += count;
    }
    for (size_t sent = 0; sent < length;) {
        ssize_t count = send(fd, request + sent, length - sent, MSG_NOSIGNAL);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return report(UNHEALTHY, "sending the request failed: ", reason(errno, &scratch));
        }
        sent += (size_t)count;
    }

    static char answer[MAX_STATUS_LINE];
    size_t have = 0;
    const char *end = NULL;
    while (end == NULL) {
        if (have == sizeof answer) {
            return report(UNHEALTHY, "no status line in the first 4096 bytes of the answer",
                          NULL);
        }
        ssize_t count = read(fd, answer + have, sizeof answer - have);
        if (count < 0 && errno == EINTR) {
            continue;
        }
        if (count < 0) {
            return report(UNHEALTHY, "reading the answer failed: ", reason(errno, &scratch));
        }
        if (count == 0) {
            return report(UNHEALTHY,
                          have == 0 ? "connection closed without an answer"
                                    : "connection closed inside the status line",
                          NULL);
        }
        end = memchr(answer + have, '\n', (size_t)count);
        have += (size_t)count;
    }
    int status = status_of(answer, (size_t)(end - answer));
    if (status < 0) {
        return report(UNHEALTHY, "malformed status line", NULL);
    }
    char digits[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                      (char)('0' + status % 10), '\0'};
    if (status >= 200 && status <= 399) {
        return report(HEALTHY, "HTTP ", digits);
    }
    struct text verdict = {0};
    add(&verdict, digits);
    add(&verdict, " (unhealthy)");
    add_bytes(&verdict, "", 1);
    return report(UNHEALTHY, "HTTP ", verdict.bytes);
}

int main(int argc, char **argv) {
    unsigned long timeout = DEFAULT_TIMEOUT;
    int next = 1;
    if (next < argc && strcmp(argv[next], "--timeout") == 0) {
        if (next + 1 >= argc || !parse_number(argv[next + 1], 1, MAX_TIMEOUT, &timeout)) {
            return usage("--timeout takes a number of seconds from 1 to 86400");
        }
        next += 2;
    }
    if (next >= argc) {
        return usage("say what to check: http PORT PATH or tcp PORT");
    }
    const char *mode = argv[next++];
    int http = strcmp(mode, "http") == 0;
    if (!http && strcmp(mode, "tcp") != 0) {
        return usage("the check is `http` or `tcp`");
    }
    if (argc - next != (http ? 2 : 1)) {
        return usage(http ? "http takes a PORT and a PATH" : "tcp takes a PORT");
    }
    unsigned long port = 0;
    if (!parse_number(argv[next], 1, 65535, &port)) {
        return usage("PORT is a number from 1 to 65535");
    }
    const char *path = http ? argv[next + 1] : NULL;
    if (http && !valid_path(path)) {
        return usage("PATH starts with / and holds no space or control character (at most 2048 "
                     "bytes)");
    }

    static const char *const hosts[2] = {"127.0.0.1", "[::1]"};
    struct text port_text = {0};
    add_number(&port_text, port);
    add_bytes(&port_text, "", 1);
    for (int i = 0; i < 2; i++) {
        add(&subject[i], http ? "http://" : "tcp ");
        add(&subject[i], hosts[i]);
        add(&subject[i], ":");
        add(&subject[i], port_text.bytes);
        if (http) {
            add(&subject[i], path);
        }
        add_bytes(&expired[i], subject[i].bytes, subject[i].length);
        add(&expired[i], ": no answer within ");
        add_number(&expired[i], timeout);
        add(&expired[i], " s\n");
    }

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &action, NULL);
    action.sa_handler = on_alarm;
    sigaction(SIGALRM, &action, NULL);
    alarm((unsigned)timeout);

    int error = 0;
    struct text scratch;
    int fd = connect_loopback((unsigned short)port, &error);
    if (fd < 0) {
        return report(UNHEALTHY, reason(error, &scratch), NULL);
    }
    if (!http) {
        close(fd);
        return report(HEALTHY, "connected", NULL);
    }
    int status = probe_http(fd, port_text.bytes, path);
    close(fd);
    return status;
}
