/*
 * bl-agent: the guest's command agent on a serial port (default /dev/ttyS1; the
 * console stays on ttyS0). Static, built with Debian's gcc.
 *
 *   bl-agent [TTY]
 *
 * The port is put in raw mode (cfmakeraw: no echo, no CR/LF translation, no
 * flow control), so every byte passes as it is. Protocol, one request at a time:
 *
 *   agent -> host  READY\n                           once, at start
 *   host -> agent  PING <id>\n
 *   agent -> host  PONG <id>\n
 *   host -> agent  RUN <id> <nbytes>\n<nbytes bytes: a shell command>
 *   agent -> host  OUT <id> <status> <nbytes>\n<nbytes bytes: stdout+stderr>
 *   agent -> host  ERR <id> <message>\n            bad frame; <id> is "-" if none
 *
 * <id>: 1..64 characters of [A-Za-z0-9_.:-]. <nbytes>: decimal, 0..MAX_CMD for
 * RUN. A header line is at most MAX_LINE bytes (longer lines are skipped up to
 * their newline and answered with ERR). A trailing \r before the \n is ignored.
 * A bad header is answered with ERR and the agent resynchronises on the next
 * line (the body of a rejected RUN is NOT consumed). <message> is one word-ish
 * line without newlines.
 *
 * RUN runs /bin/sh -c <command> with stdin /dev/null and stdout and stderr on one
 * pipe, waits for the shell to exit, then takes what is left in the pipe and
 * replies. Output that background children write after the shell has exited is
 * discarded (the pipe is closed), so "daemon &" does not hang the agent. At most
 * MAX_OUT bytes are kept; the rest is drained and dropped (the reply is then
 * followed by no marker: compare nbytes with MAX_OUT). <status> is the exit
 * status, or 128+signal when the shell was killed by a signal.
 *
 * The agent protects itself from the OOM killer (oom_score_adj -1000); the
 * commands it runs get oom_score_adj 0 again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MAX_LINE 256
#define MAX_CMD (1 << 20)
#define MAX_OUT (16 << 20)

static int tty = -1;

/* Buffered reader on the tty. */
static unsigned char rbuf[4096];
static size_t rpos, rlen;

static int rfill(void)
{
	for (;;) {
		ssize_t n = read(tty, rbuf, sizeof(rbuf));
		if (n > 0) {
			rpos = 0;
			rlen = (size_t)n;
			return 0;
		}
		if (n == 0) {
			/* hangup on a tty: wait a little and go on reading */
			usleep(100000);
			continue;
		}
		if (errno == EINTR || errno == EAGAIN)
			continue;
		return -1;
	}
}

static int rbyte(void)
{
	if (rpos == rlen && rfill() != 0)
		return -1;
	return rbuf[rpos++];
}

static int writeall(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
	char line[MAX_LINE + 128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	writeall(tty, line, (size_t)n);
}

/*
 * Reads one header line into buf (without the newline, NUL-terminated).
 * Returns its length, or -2 if it was too long (skipped to its newline).
 */
static int readline(char *buf, size_t cap)
{
	size_t n = 0;
	int toolong = 0;
	for (;;) {
		int c = rbyte();
		if (c < 0) {
			fprintf(stderr, "bl-agent: read: %s\n", strerror(errno));
			exit(1);
		}
		if (c == '\n')
			break;
		if (n + 1 < cap)
			buf[n++] = (char)c;
		else
			toolong = 1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = 0;
	return toolong ? -2 : (int)n;
}

static int valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '-'))
			return 0;
	}
	return 1;
}

/* Decimal 0..max, digits only. Returns -1 if not. */
static long parse_count(const char *s, long max)
{
	long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > max)
			return -1;
	}
	return v;
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void set_oom_adj(const char *v)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, v, strlen(v)) < 0) { /* not fatal */ }
		close(fd);
	}
}

/* Output buffer of one command. */
static char *obuf;
static size_t olen, ocap;

static void keep(const char *p, size_t n)
{
	if (olen + n > MAX_OUT)
		n = MAX_OUT - olen;
	if (n == 0)
		return;
	if (olen + n > ocap) {
		size_t c = ocap ? ocap : 65536;
		while (c < olen + n)
			c *= 2;
		char *b = realloc(obuf, c);
		if (!b)
			return; /* drop what does not fit */
		obuf = b;
		ocap = c;
	}
	memcpy(obuf + olen, p, n);
	olen += n;
}

/* Reads what is in fd now (non-blocking); returns 1 on EOF, 0 otherwise. */
static int drain(int fd)
{
	char tmp[65536];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n > 0) {
			keep(tmp, (size_t)n);
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return 0; /* EAGAIN */
	}
}

static void run(const char *id, const char *cmd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		reply("ERR %s pipe-failed", id);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		reply("ERR %s fork-failed", id);
		return;
	}
	if (pid == 0) {
		setsid();
		set_oom_adj("0");
		signal(SIGPIPE, SIG_DFL);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0) {
			dup2(nul, 0);
			if (nul != 0)
				close(nul);
		}
		dup2(p[1], 1);
		dup2(p[1], 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	int pfd = pidfd_open_(pid);
	olen = 0;
	int status = 0, eof = 0;
	for (;;) {
		struct pollfd fds[2];
		nfds_t nf = 0;
		if (!eof)
			fds[nf++] = (struct pollfd){ .fd = p[0], .events = POLLIN };
		if (pfd >= 0)
			fds[nf++] = (struct pollfd){ .fd = pfd, .events = POLLIN };
		if (nf == 0) {
			/* no pidfd and nothing more to read: block for the exit */
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		if (poll(fds, nf, pfd >= 0 ? -1 : 50) < 0 && errno != EINTR)
			break;
		if (!eof && drain(p[0]))
			eof = 1;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			break;
	}
	if (!eof)
		drain(p[0]); /* what the shell wrote before it exited */
	close(p[0]);
	if (pfd >= 0)
		close(pfd);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255;
	char head[160];
	int n = snprintf(head, sizeof(head), "OUT %s %d %zu\n", id, code, olen);
	writeall(tty, head, (size_t)n);
	writeall(tty, obuf, olen);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/dev/ttyS1";
	tty = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty < 0) {
		fprintf(stderr, "bl-agent: %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct termios t;
	if (tcgetattr(tty, &t) == 0) {
		cfmakeraw(&t);
		cfsetispeed(&t, B115200);
		cfsetospeed(&t, B115200);
		t.c_cflag |= CLOCAL | CREAD;
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		tcsetattr(tty, TCSANOW, &t);
		tcflush(tty, TCIFLUSH);
	}
	signal(SIGPIPE, SIG_IGN);
	set_oom_adj("-1000");
	reply("READY");

	char line[MAX_LINE + 1];
	char *cmd = malloc(MAX_CMD + 1);
	if (!cmd)
		return 1;
	for (;;) {
		int n = readline(line, sizeof(line));
		if (n == -2) {
			reply("ERR - line-too-long");
			continue;
		}
		if (n == 0)
			continue; /* empty lines are ignored (handy to resync) */
		char *save = NULL;
		char *verb = strtok_r(line, " ", &save);
		char *id = strtok_r(NULL, " ", &save);
		char *arg = strtok_r(NULL, " ", &save);
		char *extra = strtok_r(NULL, " ", &save);
		const char *rid = id && valid_id(id) ? id : "-";
		if (!verb || !id || !valid_id(id)) {
			reply("ERR %s bad-header", rid);
		} else if (strcmp(verb, "PING") == 0) {
			if (arg)
				reply("ERR %s bad-ping", rid);
			else
				reply("PONG %s", id);
		} else if (strcmp(verb, "RUN") == 0) {
			long len = arg && !extra ? parse_count(arg, MAX_CMD) : -1;
			if (len < 0) {
				reply("ERR %s bad-length", rid);
				continue;
			}
			long got = 0;
			int nul = 0;
			while (got < len) {
				int c = rbyte();
				if (c < 0)
					return 1;
				if (c == 0)
					nul = 1;
				cmd[got++] = (char)c;
			}
			cmd[got] = 0;
			if (nul)
				reply("ERR %s nul-in-command", id);
			else
				run(id, cmd);
		} else {
			reply("ERR %s unknown-verb", rid);
		}
	}
}
