/*
 * tls.c: server TLS contexts and sessions over memory BIOs, self-signed
 * certificates (see tls.h for the contract).
 *
 * Every OpenSSL call that can fail starts from an empty error queue
 * (ERR_clear_error), so the reason read afterwards belongs to that call,
 * and leaves the queue empty again: the queue is per thread and the loop
 * thread runs every session.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* TLS 1.2 suites: forward secret key exchange and AEAD only (TLS 1.3
 * suites are all of that kind; OpenSSL's default list is kept). */
#define TLS12_CIPHERS                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Plaintext encrypted per SSL_write: one full record, so the outgoing BIO
 * stays small between drains. */
#define WRITE_CHUNK 16384

struct tp_tls_ctx {
    SSL_CTX *ssl_ctx;    /* serves new handshakes; sessions hold refs */
    char *cert;          /* certificate chain file */
    char *key;           /* private key file */
    int64_t not_after;   /* expiry of the loaded certificate */
};

struct tp_tls {
    SSL *ssl;            /* the session; owns both BIOs */
    BIO *rbio;           /* ciphertext from the peer */
    BIO *wbio;           /* ciphertext for the peer */
    bool ready;          /* handshake complete */
    bool failed;         /* fatal error: nothing more goes in or out */
    bool shut;           /* close_notify queued */
    char why[128];       /* reason of the failure */
};

/* ------------------------------------------------------------ helpers */

/* The reason of the first OpenSSL error queued (the cause; later ones
 * tend to be "PEM lib" and the like), and an empty queue. */
static void last_error(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (r)
        snprintf(buf, len, "%s", r);
    else if (e)
        snprintf(buf, len, "OpenSSL error 0x%lx", e);
    else
        snprintf(buf, len, "%s", fallback);
    ERR_clear_error();
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    /* 0 (1970) on failure: an unreadable expiry then counts as expired. */
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) ||
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

/* Refuses to ask for a passphrase: OpenSSL's default would read the
 * terminal and block the server. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static int check_readable(const char *what, const char *path, char *err,
                          size_t errlen)
{
    /* Tried first: OpenSSL's error for a missing file names neither the
     * file nor errno; this message does. */
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "TLS %s %s: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* ------------------------------------------------------------ contexts */

static SSL_CTX *load_ctx(const char *cert, const char *key,
                         int64_t *not_after, char *err, size_t errlen)
{
    char why[128];
    if (check_readable("certificate", cert, err, errlen) != 0 ||
        check_readable("key", key, err, errlen) != 0)
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        last_error(why, sizeof why, "out of memory");
        snprintf(err, errlen, "cannot create a TLS context: %s", why);
        return NULL;
    }
    /* No session tickets, TLS 1.2 or 1.3: the tickets sent after a 1.3
     * handshake crash libtpproto-cpp's reader (PROTOCOL.md 1.3), and a
     * TP session is long enough that resumption saves nothing. */
    uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                    SSL_OP_NO_TICKET;
    /* Older OpenSSL versions lack these two flags. */
#ifdef SSL_OP_NO_RENEGOTIATION
    opts |= SSL_OP_NO_RENEGOTIATION;
#endif
#ifdef SSL_OP_NO_CLIENT_RENEGOTIATION
    opts |= SSL_OP_NO_CLIENT_RENEGOTIATION;
#endif
    SSL_CTX_set_options(ctx, opts);
    /* 1.2 at least (PROTOCOL.md 1.3): 1.0 and 1.1 would only serve very
     * old client builds. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "cannot configure TLS: %s", why);
        goto fail;
    }
    /* For TLS 1.3, where SSL_OP_NO_TICKET alone still sends (stateful)
     * tickets. */
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "cannot configure TLS: %s", why);
        goto fail;
    }
    /* No resumption (see above), so no cache growing with the sessions. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Idle sessions give their 16 KiB record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No client certificates: TP clients have none (PROTOCOL.md 1.3). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tpserver",
                                   8);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "TLS certificate %s: not a usable PEM "
                 "certificate (%s)", cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        /* The last error: a mismatch is found by the final step, after the
         * PEM reading. */
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
            ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(err, errlen, "TLS key %s does not belong to the "
                     "certificate %s", key, cert);
            goto fail;
        }
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "TLS key %s: not a usable PEM private key "
                 "(%s; encrypted keys are not supported)", key, why);
        goto fail;
    }
    /* Also catches a key of another type than the certificate (EC and
     * RSA), which use_PrivateKey puts in a slot of its own unchecked. */
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "TLS key %s does not belong to the "
                 "certificate %s", key, cert);
        goto fail;
    }
    X509 *x = SSL_CTX_get0_certificate(ctx);
    int64_t na = x ? asn1_unix(X509_get0_notAfter(x)) : 0;
    /* Refused though no TP client checks dates (PROTOCOL.md 1.3): the
     * admin hears of it at start or reload, with the file's name. */
    if (na <= (int64_t)time(NULL)) {
        char when[48];
        format_time(na, when, sizeof when);
        snprintf(err, errlen, "TLS certificate %s expired on %s", cert,
                 when);
        goto fail;
    }
    *not_after = na;
    ERR_clear_error();
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

tp_tls_ctx_t *tp_tls_ctx_new(const char *cert, const char *key, char *err,
                             size_t errlen)
{
    tp_tls_ctx_t *t = calloc(1, sizeof *t);
    if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
        snprintf(err, errlen, "out of memory");
        tp_tls_ctx_free(t);
        return NULL;
    }
    t->ssl_ctx = load_ctx(cert, key, &t->not_after, err, errlen);
    if (!t->ssl_ctx) {
        tp_tls_ctx_free(t);
        return NULL;
    }
    return t;
}

int tp_tls_ctx_reload(tp_tls_ctx_t *t, char *err, size_t errlen)
{
    int64_t na = 0;
    SSL_CTX *ctx = load_ctx(t->cert, t->key, &na, err, errlen);
    if (!ctx)
        return -1;
    /* Only now that the new one loaded. Sessions hold references of their
     * own (SSL_new), so they keep the old context until they end. */
    SSL_CTX_free(t->ssl_ctx);
    t->ssl_ctx = ctx;
    t->not_after = na;
    return 0;
}

void tp_tls_ctx_free(tp_tls_ctx_t *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl_ctx);
    free(t->cert);
    free(t->key);
    free(t);
}

const char *tp_tls_ctx_cert(const tp_tls_ctx_t *t)
{
    return t->cert;
}

int64_t tp_tls_ctx_not_after(const tp_tls_ctx_t *t)
{
    return t->not_after;
}

/* ------------------------------------------------------------ sessions */

tp_tls_t *tp_tls_new(tp_tls_ctx_t *ctx)
{
    tp_tls_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        /* The BIOs are not the SSL's yet: each is freed on its own. */
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return NULL;
    }
    /* An empty BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void tp_tls_free(tp_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIOs */
    free(t);
}

static void fail_session(tp_tls_t *t, int ssl_error)
{
    t->failed = true;
    last_error(t->why, sizeof t->why,
               ssl_error == SSL_ERROR_SYSCALL ? "unexpected end of stream"
                                              : "TLS protocol error");
}

int tp_tls_feed(tp_tls_t *t, const void *p, size_t n)
{
    if (t->failed)
        return TP_TLS_FAILED;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        ERR_clear_error();
        int w = BIO_write(t->rbio, p, chunk);
        /* A memory BIO takes all it can allocate: failing is out of memory. */
        if (w <= 0) {
            t->failed = true;
            snprintf(t->why, sizeof t->why, "out of memory");
            ERR_clear_error();
            return TP_TLS_FAILED;
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

int tp_tls_handshake(tp_tls_t *t)
{
    if (t->failed)
        return TP_TLS_FAILED;
    if (t->ready)
        return 1;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        t->ready = true;
        return 1;
    }
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    fail_session(t, e);
    return TP_TLS_FAILED;
}

bool tp_tls_ready(const tp_tls_t *t)
{
    return t->ready && !t->failed;
}

long tp_tls_read(tp_tls_t *t, void *out, size_t room)
{
    if (t->failed)
        return TP_TLS_FAILED;
    if (!t->ready || room == 0)
        return 0;
    int want = room > INT_MAX ? INT_MAX : (int)room;
    ERR_clear_error();
    int n = SSL_read(t->ssl, out, want);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    /* Also when what was fed held no data (part of a record, a TLS 1.3
     * key update): wait for more. */
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return 0;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return TP_TLS_EOF;
    }
    fail_session(t, e);
    return TP_TLS_FAILED;
}

size_t tp_tls_backlog(const tp_tls_t *t)
{
    int pend = SSL_pending(t->ssl);
    return BIO_ctrl_pending(t->rbio) + (pend > 0 ? (size_t)pend : 0);
}

int tp_tls_write(tp_tls_t *t, const void *p, size_t n)
{
    if (t->failed || !t->ready || t->shut)
        return TP_TLS_FAILED;
    while (n > 0) {
        /* At most one record per SSL_write, so the caller's frame boundaries
         * stay record boundaries (PROTOCOL.md 1.3). */
        int chunk = n > WRITE_CHUNK ? WRITE_CHUNK : (int)n;
        ERR_clear_error();
        int w = SSL_write(t->ssl, p, chunk);
        /* Never "try again": the memory BIO takes all, and renegotiation is
         * off. */
        if (w <= 0) {
            fail_session(t, SSL_get_error(t->ssl, w));
            return TP_TLS_FAILED;
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
    return 0;
}

size_t tp_tls_pending(const tp_tls_t *t)
{
    return BIO_ctrl_pending(t->wbio);
}

bool tp_tls_drain(tp_tls_t *t, tp_buf_t *dst)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        if (!tp_buf_reserve(dst, (size_t)chunk)) {
            /* Part of a record cannot be sent (it would corrupt the
             * stream): drop it all, and the session with it. */
            (void)BIO_reset(t->wbio);
            t->failed = true;
            snprintf(t->why, sizeof t->why, "output buffer full");
            return false;
        }
        int r = BIO_read(t->wbio, dst->data + dst->len, chunk);
        if (r <= 0)
            break;
        dst->len += (size_t)r;
        n -= (size_t)r;
    }
    ERR_clear_error();
    return true;
}

void tp_tls_close_notify(tp_tls_t *t)
{
    if (t->shut || t->failed || !t->ready)
        return;
    t->shut = true;
    ERR_clear_error();
    /* The peer's close_notify is never waited for (the connection closes
     * anyway), so 0, "sent, no answer yet", is fine. */
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

const char *tp_tls_reason(const tp_tls_t *t)
{
    return t->failed ? t->why : "";
}

const char *tp_tls_protocol(const tp_tls_t *t)
{
    return SSL_get_version(t->ssl);
}

const char *tp_tls_cipher(const tp_tls_t *t)
{
    const char *c = SSL_get_cipher_name(t->ssl);
    return c ? c : "?";
}

/* ------------------------------------------------------------ files */

typedef int (*pem_writer_fn)(FILE *f, void *obj);

static int write_key_pem(FILE *f, void *obj)
{
    return PEM_write_PrivateKey(f, obj, NULL, NULL, 0, NULL, NULL);
}

static int write_cert_pem(FILE *f, void *obj)
{
    return PEM_write_X509(f, obj);
}

/* Writes path through a temporary file in the same folder, then renames
 * it into place, so a reader never sees half a file. */
static int write_pem(const char *path, mode_t mode, pem_writer_fn writer,
                     void *obj, char *err, size_t errlen)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The pid keeps two processes off one temporary file. */
    snprintf(tmp, plen + 32, "%s.tmp%ld", path, (long)getpid());
    /* The mode is set at creation: a key is never readable by others, not
     * even for a moment. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    ERR_clear_error();
    int ok = writer(f, obj) == 1;
    /* Synced before the rename: after a crash the name holds the whole
     * new file, never an empty one. */
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    int saved = errno;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path,
                 saved ? strerror(saved) : "PEM encoding failed");
        unlink(tmp);
        free(tmp);
        ERR_clear_error();
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int tp_tls_make_self_signed(const char *cert, const char *key,
                            const char *cn, int days, char *err,
                            size_t errlen)
{
    int rc = -1;
    char why[128];
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    BIGNUM *serial = NULL;
    X509_EXTENSION *ext = NULL;
    ERR_clear_error();
    EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    if (!kctx || EVP_PKEY_keygen_init(kctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(kctx, 2048) <= 0 ||
        EVP_PKEY_keygen(kctx, &pkey) <= 0) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "cannot generate a TLS key: %s", why);
        goto out;
    }
    x = X509_new();
    serial = BN_new();
    /* Version 2 means v3 (needed for subjectAltName). A random 63-bit
     * serial: positive in 8 bytes, and new with every certificate made.
     * Valid from an hour ago, for clients whose clock runs behind. */
    if (!x || !serial || X509_set_version(x, 2) != 1 ||
        BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) ||
        X509_set_pubkey(x, pkey) != 1) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "cannot build a certificate: %s", why);
        goto out;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   (const unsigned char *)
                                   "tpserver (self-signed)", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, name) != 1) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "cannot name the certificate %s: %s", cn, why);
        goto out;
    }
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    /* Clients that check names match subjectAltName, not the CN. */
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                              "DNS:localhost,IP:127.0.0.1,IP:::1");
    if (!ext || X509_add_ext(x, ext, -1) != 1 ||
        X509_sign(x, pkey, EVP_sha256()) <= 0) {
        last_error(why, sizeof why, "?");
        snprintf(err, errlen, "cannot sign the certificate: %s", why);
        goto out;
    }
    /* The key first: a certificate on disk always has its key. */
    if (write_pem(key, 0600, write_key_pem, pkey, err, errlen) != 0 ||
        write_pem(cert, 0644, write_cert_pem, x, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    X509_EXTENSION_free(ext);
    BN_free(serial);
    X509_free(x);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(kctx);
    ERR_clear_error();
    return rc;
}

int tp_tls_cert_info(const char *path, int64_t *not_before,
                     int64_t *not_after, char *subject, size_t subjlen,
                     char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "TLS certificate %s: %s", path,
                 strerror(errno));
        return -1;
    }
    ERR_clear_error();
    /* no_password: the default callback would prompt on the terminal. */
    X509 *x = PEM_read_X509(f, NULL, no_password, NULL);
    fclose(f);
    if (!x) {
        ERR_clear_error();
        snprintf(err, errlen, "TLS certificate %s: not a PEM certificate",
                 path);
        return -1;
    }
    *not_before = asn1_unix(X509_get0_notBefore(x));
    *not_after = asn1_unix(X509_get0_notAfter(x));
    if (subject && subjlen > 0 &&
        !X509_NAME_oneline(X509_get_subject_name(x), subject, (int)subjlen))
        subject[0] = '\0';
    X509_free(x);
    ERR_clear_error();
    return 0;
}
