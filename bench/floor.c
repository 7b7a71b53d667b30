/* The floor of a sender's CPU per message on this machine: SESSIONS
 * connections to an SMTP sink, each sending its share of N messages of SIZE
 * bytes the way utskick's relay client does with PIPELINING (MAIL, RCPT and
 * DATA in one write, the three replies, the message and its "." in one
 * write, its reply), and nothing else: no rendering, no store, no TLS.
 * bench/run times it with /usr/bin/time beside smtp-source, so the CPU per
 * message that the kernel's loopback TCP alone costs is in the same table.
 *
 * Usage: floor PORT N SIZE SESSIONS
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* Reads until `n` final reply lines ("ddd " + text) have come. */
static void replies(int fd, int n) {
    static char buf[65536];
    static int col, final_line;
    while (n > 0) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0)
            die("read");
        for (ssize_t i = 0; i < k; i++) {
            if (col == 0 && buf[i] != '2' && buf[i] != '3') {
                fprintf(stderr, "floor: unexpected reply\n");
                exit(1);
            }
            if (col == 3)
                final_line = buf[i] == ' ';
            if (buf[i] == '\n') {
                n -= final_line;
                col = 0;
                final_line = 0;
            } else {
                col++;
            }
        }
    }
}

static void put(int fd, const char *p, size_t len) {
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k <= 0)
            die("write");
        p += k;
        len -= (size_t)k;
    }
}

static void session(int port, int n, const char *msg, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    replies(fd, 1);
    const char *ehlo = "EHLO bench.example.org\r\n";
    put(fd, ehlo, strlen(ehlo));
    replies(fd, 1);
    const char *env = "MAIL FROM:<bounce+0123456789abcdef@lista.example.se>\r\n"
                      "RCPT TO:<p12345@d7.example.org>\r\nDATA\r\n";
    for (int i = 0; i < n; i++) {
        put(fd, env, strlen(env));
        replies(fd, 3);
        put(fd, msg, len);
        replies(fd, 1);
    }
    put(fd, "QUIT\r\n", 6);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: floor PORT N SIZE SESSIONS\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]), size = atoi(argv[3]), sessions = atoi(argv[4]);
    if (port <= 0 || n <= 0 || size < 2 || sessions <= 0)
        return 2;
    /* Lines of 76 bytes with CRLF, no line starting with a dot, then ".". */
    char *msg = malloc((size_t)size + 3);
    if (!msg)
        die("malloc");
    for (int i = 0; i < size; i++)
        msg[i] = i % 76 == 74 ? '\r' : i % 76 == 75 ? '\n' : (char)('a' + i % 26);
    msg[size - 2] = '\r';
    msg[size - 1] = '\n';
    memcpy(msg + size, ".\r\n", 3);
    for (int s = 0; s < sessions; s++) {
        int share = n / sessions + (s < n % sessions);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            session(port, share, msg, (size_t)size + 3);
            _exit(0);
        }
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}
