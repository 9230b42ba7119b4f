/*
 * test_tls.c: core/tls.c without sockets. Self-signed certificates and
 * their checks (missing, garbage, mismatched key, expired), and a server
 * session driven through its memory BIOs against an OpenSSL client:
 * handshake, data both ways, backlog, close_notify both ways, failed
 * handshakes (not TLS, TLS 1.1), and a context reloaded with a new
 * certificate while an old session goes on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "tap.h"
#include "tls.h"

static char dir[256];

static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int n;
    char *p = buf[n++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* An OpenSSL client with memory BIOs, talking to a tp_tls_t. */
typedef struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rbio, *wbio;
} client_t;

static void client_init(client_t *cl, int max_version)
{
    cl->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_NONE, NULL);
    if (max_version) {
        SSL_CTX_set_security_level(cl->ctx, 0);
        SSL_CTX_set_min_proto_version(cl->ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(cl->ctx, max_version);
        SSL_CTX_set_cipher_list(cl->ctx, "DEFAULT:@SECLEVEL=0");
    }
    cl->ssl = SSL_new(cl->ctx);
    cl->rbio = BIO_new(BIO_s_mem());
    cl->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(cl->rbio, -1);
    SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
    SSL_set_connect_state(cl->ssl);
}

static void client_free(client_t *cl)
{
    SSL_free(cl->ssl);
    SSL_CTX_free(cl->ctx);
}

/* Client ciphertext -> server. */
static int to_server(client_t *cl, tp_tls_t *t)
{
    char buf[65536];
    int n;
    while ((n = BIO_read(cl->wbio, buf, sizeof buf)) > 0)
        if (tp_tls_feed(t, buf, (size_t)n) != 0)
            return -1;
    return 0;
}

/* Server ciphertext -> client. */
static void to_client(tp_tls_t *t, client_t *cl)
{
    tp_buf_t b;
    tp_buf_init(&b, 0);
    tp_tls_drain(t, &b);
    if (b.len)
        BIO_write(cl->rbio, b.data, (int)b.len);
    tp_buf_free(&b);
}

/* Runs the handshake to its end; returns the server's last result. */
static int handshake(client_t *cl, tp_tls_t *t)
{
    int rc = 0;
    for (int i = 0; i < 20; i++) {
        int c = SSL_do_handshake(cl->ssl);
        if (to_server(cl, t) != 0)
            return -1;
        rc = tp_tls_handshake(t);
        to_client(t, cl);
        if (rc < 0)
            return rc;
        if (rc == 1 && c == 1)
            break;
    }
    SSL_do_handshake(cl->ssl); /* takes the session tickets */
    ERR_clear_error();
    return rc;
}

static bool file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static void test_files(void)
{
    char err[512] = "";
    int rc = tp_tls_make_self_signed(path_in("a.crt"), path_in("a.key"),
                                     "alpha.example", 30, err, sizeof err);
    TAP_IS_INT(rc, 0, "a self-signed certificate is made (%s)", err);
    struct stat st;
    TAP_OK(stat(path_in("a.key"), &st) == 0 && (st.st_mode & 0777) == 0600,
           "its key file is mode 0600");
    TAP_OK(file_has(path_in("a.crt"), "BEGIN CERTIFICATE") &&
           file_has(path_in("a.key"), "PRIVATE KEY"), "both are PEM");
    int64_t nb = 0, na = 0;
    char subject[256] = "";
    rc = tp_tls_cert_info(path_in("a.crt"), &nb, &na, subject,
                          sizeof subject, err, sizeof err);
    int64_t now = (int64_t)time(NULL);
    TAP_OK(rc == 0 && na > now + 29 * 86400 && na < now + 31 * 86400 &&
           nb < now, "it is valid from now for 30 days");
    TAP_OK(strstr(subject, "CN=alpha.example") != NULL,
           "its subject names the host (%s)", subject);
    tp_tls_make_self_signed(path_in("b.crt"), path_in("b.key"), "beta", 30,
                            err, sizeof err);

    tp_tls_ctx_t *ctx = tp_tls_ctx_new(path_in("a.crt"), path_in("a.key"),
                                       err, sizeof err);
    TAP_OK(ctx != NULL, "the pair loads (%s)", err);
    TAP_OK(ctx && tp_tls_ctx_not_after(ctx) == na, "its expiry is known");
    tp_tls_ctx_free(ctx);

    ctx = tp_tls_ctx_new(path_in("none.crt"), path_in("a.key"), err,
                         sizeof err);
    TAP_OK(!ctx && strstr(err, path_in("none.crt")) &&
           strstr(err, "No such file"), "a missing certificate: %s", err);
    ctx = tp_tls_ctx_new(path_in("a.crt"), path_in("none.key"), err,
                         sizeof err);
    TAP_OK(!ctx && strstr(err, path_in("none.key")),
           "a missing key: %s", err);
    ctx = tp_tls_ctx_new(path_in("a.crt"), path_in("b.key"), err,
                         sizeof err);
    TAP_OK(!ctx && strstr(err, "does not belong"),
           "a key of another certificate: %s", err);
    ctx = tp_tls_ctx_new(path_in("a.key"), path_in("a.key"), err,
                         sizeof err);
    TAP_OK(!ctx && strstr(err, "not a usable PEM certificate"),
           "a key given as the certificate: %s", err);
    rc = tp_tls_cert_info(path_in("a.key"), &nb, &na, NULL, 0, err,
                          sizeof err);
    TAP_OK(rc != 0 && strstr(err, "not a PEM certificate"),
           "cert_info of a non-certificate: %s", err);

    /* Valid for 0 days: expired as soon as it is made. */
    tp_tls_make_self_signed(path_in("old.crt"), path_in("old.key"), "old",
                            0, err, sizeof err);
    sleep(1);
    ctx = tp_tls_ctx_new(path_in("old.crt"), path_in("old.key"), err,
                         sizeof err);
    TAP_OK(!ctx && strstr(err, "expired on") &&
           strstr(err, path_in("old.crt")), "an expired certificate: %s",
           err);
}

static void test_session(void)
{
    char err[512];
    tp_tls_ctx_t *ctx = tp_tls_ctx_new(path_in("a.crt"), path_in("a.key"),
                                       err, sizeof err);
    tp_tls_t *t = tp_tls_new(ctx);
    client_t cl;
    client_init(&cl, 0);
    TAP_OK(!tp_tls_ready(t), "a new session is not ready");
    TAP_IS_INT(handshake(&cl, t), 1, "the handshake completes");
    TAP_OK(tp_tls_ready(t), "the session is ready");
    TAP_IS_STR(tp_tls_protocol(t), "TLSv1.3", "TLS 1.3 by default");

    /* Client -> server, two records before any read: both in the
     * backlog. */
    SSL_write(cl.ssl, "hello ", 6);
    SSL_write(cl.ssl, "world", 5);
    to_server(&cl, t);
    TAP_OK(tp_tls_backlog(t) > 11, "fed records wait in the backlog (%zu)",
           tp_tls_backlog(t));
    char buf[64] = "";
    long n1 = tp_tls_read(t, buf, sizeof buf);
    long n2 = tp_tls_read(t, buf + n1, sizeof buf - (size_t)n1 - 1);
    TAP_OK(n1 + n2 == 11 && memcmp(buf, "hello world", 11) == 0,
           "the server reads what the client wrote");
    TAP_IS_INT(tp_tls_read(t, buf, sizeof buf), 0,
               "then nothing is waiting");
    TAP_IS_INT(tp_tls_backlog(t), 0, "and the backlog is empty");

    /* A small room reads a record in pieces. */
    SSL_write(cl.ssl, "abcdef", 6);
    to_server(&cl, t);
    long a = tp_tls_read(t, buf, 4);
    TAP_OK(a == 4 && tp_tls_backlog(t) == 2,
           "a short read leaves the rest pending");
    TAP_IS_INT(tp_tls_read(t, buf + 4, 10), 2, "and reads it next");

    /* Server -> client: 100000 bytes in records. */
    static unsigned char big[100000], back[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    TAP_IS_INT(tp_tls_write(t, big, sizeof big), 0, "100000 bytes written");
    TAP_OK(tp_tls_pending(t) > sizeof big, "ciphertext is pending (%zu)",
           tp_tls_pending(t));
    to_client(t, &cl);
    TAP_IS_INT(tp_tls_pending(t), 0, "the drain took it all");
    size_t got = 0;
    int r;
    while (got < sizeof back &&
           (r = SSL_read(cl.ssl, back + got, (int)(sizeof back - got))) > 0)
        got += (size_t)r;
    TAP_OK(got == sizeof big && memcmp(big, back, sizeof big) == 0,
           "the client reads the same bytes");

    /* A tampered record fails the session. */
    tp_tls_t *t2 = tp_tls_new(ctx);
    client_t c2;
    client_init(&c2, 0);
    handshake(&c2, t2);
    SSL_write(c2.ssl, "secret", 6);
    char rec[256];
    int rl = BIO_read(c2.wbio, rec, sizeof rec);
    rec[rl - 1] ^= 1;
    tp_tls_feed(t2, rec, (size_t)rl);
    TAP_IS_INT(tp_tls_read(t2, buf, sizeof buf), TP_TLS_FAILED,
               "a tampered record fails the session");
    TAP_OK(tp_tls_reason(t2)[0] != '\0', "with a reason (%s)",
           tp_tls_reason(t2));
    TAP_IS_INT(tp_tls_write(t2, "x", 1), TP_TLS_FAILED,
               "a failed session takes no more output");
    tp_tls_close_notify(t2);
    tp_tls_free(t2);
    client_free(&c2);

    /* close_notify from the server, then from the client. */
    tp_tls_close_notify(t);
    tp_tls_close_notify(t); /* once only */
    to_client(t, &cl);
    r = SSL_read(cl.ssl, buf, sizeof buf);
    TAP_OK(r <= 0 && SSL_get_error(cl.ssl, r) == SSL_ERROR_ZERO_RETURN,
           "the client sees the server's close_notify");
    TAP_IS_INT(tp_tls_write(t, "x", 1), TP_TLS_FAILED,
               "nothing is written after close_notify");
    SSL_shutdown(cl.ssl);
    to_server(&cl, t);
    TAP_IS_INT(tp_tls_read(t, buf, sizeof buf), TP_TLS_EOF,
               "the server sees the client's close_notify");
    ERR_clear_error();
    tp_tls_free(t);
    client_free(&cl);
    tp_tls_ctx_free(ctx);
}

static void test_bad_handshakes(void)
{
    char err[512];
    tp_tls_ctx_t *ctx = tp_tls_ctx_new(path_in("a.crt"), path_in("a.key"),
                                       err, sizeof err);
    /* Plain TP on a TLS port. */
    tp_tls_t *t = tp_tls_new(ctx);
    static const char tp[] = "TP\x04\x00\x00\x00\x00\x01\x00\x00\x00\x03"
                             "\x00\x00\x00\x04\x00\x00\x00\x00";
    tp_tls_feed(t, tp, sizeof tp - 1);
    TAP_IS_INT(tp_tls_handshake(t), TP_TLS_FAILED, "TP instead of a "
               "ClientHello fails the handshake (%s)", tp_tls_reason(t));
    TAP_IS_INT(tp_tls_handshake(t), TP_TLS_FAILED, "and stays failed");
    tp_tls_free(t);

    /* Half a ClientHello: waits. */
    t = tp_tls_new(ctx);
    tp_tls_feed(t, "\x16\x03\x01\x02\x00", 5);
    TAP_IS_INT(tp_tls_handshake(t), 0, "half a record: the handshake waits");
    tp_tls_free(t); /* freed mid-handshake: no leak */

    /* TLS 1.1. */
    t = tp_tls_new(ctx);
    client_t cl;
    client_init(&cl, TLS1_1_VERSION);
    TAP_IS_INT(handshake(&cl, t), TP_TLS_FAILED,
               "a TLS 1.1 client is refused (%s)", tp_tls_reason(t));
    tp_tls_free(t);
    client_free(&cl);

    /* TLS 1.2 works, with a forward-secret AEAD suite. */
    t = tp_tls_new(ctx);
    client_init(&cl, 0);
    SSL_set_max_proto_version(cl.ssl, TLS1_2_VERSION);
    TAP_IS_INT(handshake(&cl, t), 1, "a TLS 1.2 client is served");
    TAP_OK(strncmp(tp_tls_cipher(t), "ECDHE-", 6) == 0 &&
           strstr(tp_tls_cipher(t), "GCM"), "with %s", tp_tls_cipher(t));
    tp_tls_free(t);
    client_free(&cl);
    tp_tls_ctx_free(ctx);
}

/* The certificate the client got, compared with a PEM file. */
static bool peer_is(client_t *cl, const char *pem)
{
    X509 *peer = SSL_get1_peer_certificate(cl->ssl);
    FILE *f = fopen(pem, "r");
    X509 *want = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    bool same = peer && want && X509_cmp(peer, want) == 0;
    X509_free(peer);
    X509_free(want);
    return same;
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[8192];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    if (a)
        fclose(a);
    if (b)
        fclose(b);
}

static void test_reload(void)
{
    char err[512];
    copy_file(path_in("a.crt"), path_in("live.crt"));
    copy_file(path_in("a.key"), path_in("live.key"));
    tp_tls_ctx_t *ctx = tp_tls_ctx_new(path_in("live.crt"),
                                       path_in("live.key"), err, sizeof err);
    tp_tls_t *old = tp_tls_new(ctx);
    client_t oc;
    client_init(&oc, 0);
    handshake(&oc, old);
    TAP_OK(peer_is(&oc, path_in("a.crt")), "the first certificate served");

    copy_file(path_in("b.crt"), path_in("live.crt"));
    copy_file(path_in("b.key"), path_in("live.key"));
    TAP_IS_INT(tp_tls_ctx_reload(ctx, err, sizeof err), 0,
               "the context reloads the changed files");
    tp_tls_t *t = tp_tls_new(ctx);
    client_t cl;
    client_init(&cl, 0);
    TAP_IS_INT(handshake(&cl, t), 1, "a handshake after the reload");
    TAP_OK(peer_is(&cl, path_in("b.crt")), "gets the new certificate");
    tp_tls_free(t);
    client_free(&cl);

    SSL_write(oc.ssl, "still", 5);
    to_server(&oc, old);
    char buf[16];
    TAP_IS_INT(tp_tls_read(old, buf, sizeof buf), 5,
               "a session from before the reload goes on");

    FILE *f = fopen(path_in("live.crt"), "w");
    fputs("broken\n", f);
    fclose(f);
    TAP_IS_INT(tp_tls_ctx_reload(ctx, err, sizeof err), -1,
               "a broken file does not reload: %s", err);
    t = tp_tls_new(ctx);
    client_init(&cl, 0);
    TAP_IS_INT(handshake(&cl, t), 1, "handshakes go on");
    TAP_OK(peer_is(&cl, path_in("b.crt")), "with the last good certificate");
    tp_tls_free(t);
    client_free(&cl);
    tp_tls_ctx_free(ctx); /* before the old session: it holds a ref */
    SSL_write(oc.ssl, "after", 5);
    to_server(&oc, old);
    TAP_IS_INT(tp_tls_read(old, buf, sizeof buf), 5,
               "the old session outlives the listener's context");
    tp_tls_free(old);
    client_free(&oc);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tp-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_files();
    test_session();
    test_bad_handshakes();
    test_reload();
    static const char *const files[] = {
        "a.crt", "a.key", "b.crt", "b.key", "old.crt", "old.key",
        "live.crt", "live.key"
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(path_in(files[i]));
    rmdir(dir);
    return tap_done();
}
