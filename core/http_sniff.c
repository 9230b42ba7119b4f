/*
 * http_sniff.c: HTTP preambles before TP (see http_sniff.h).
 */
#include "http_sniff.h"

#include <stdio.h>
#include <string.h>

#include "framing.h"
#include "log.h"

/* The HTTP request header before a tunnel, at most. */
#define PREAMBLE_MAX 8192

/* PROTOCOL.md 1.2: the exact answer to a tunnel's POST. */
static const char HTTP_TUNNEL_OK[] =
    "HTTP/1.0 200 OK\r\n"
    "Cache-Control: no-store, no-cache, must-revalidate, post-check=0, "
    "pre-check=0\r\n"
    "Pragma: no-cache\r\n\r\n";
#define HTTP_PAGE_BODY                                                     \
    "<html><head><title>Thousand Parsec server</title></head><body>"       \
    "<p>This is a Thousand Parsec game server. Connect to it with a "      \
    "Thousand Parsec client.</p></body></html>\n"
static const char HTTP_PAGE[] =
    "HTTP/1.0 200 OK\r\n"
    "Cache-Control: no-store, no-cache, must-revalidate, post-check=0, "
    "pre-check=0\r\n"
    "Pragma: no-cache\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Length: %zu\r\n\r\n%s";

/* 1 when the n bytes at p start with word, 0 when they are a proper
 * prefix of it (more needed), -1 when they differ. */
static int starts_with(const uint8_t *p, size_t n, const char *word)
{
    size_t wl = strlen(word);
    size_t m = n < wl ? n : wl;
    if (memcmp(p, word, m) != 0)
        return -1;
    return n >= wl ? 1 : 0;
}

bool tp_http_sniff(tp_conn_t *c)
{
    const uint8_t *p = c->in.data;
    size_t n = c->in.len;
    if (n == 0)
        return false;
    int tp = starts_with(p, n, "TP");
    int post = starts_with(p, n, "POST");
    int get = starts_with(p, n, "GET ");
    if (tp == 1) {
        c->sniff = false;
        return true;
    }
    if (tp < 0 && post < 0 && get < 0) {
        tp_conn_send_text(c, TP_MSG_NOT_TP, sizeof TP_MSG_NOT_TP - 1,
                          "neither TP nor HTTP");
        return false;
    }
    if (post != 1 && get != 1)
        return false;
    size_t lim = n < PREAMBLE_MAX ? n : PREAMBLE_MAX;
    const uint8_t *end = memmem(p, lim, "\r\n\r\n", 4);
    if (!end) {
        if (n >= PREAMBLE_MAX) {
            tp_log_info("net", "conn=%llu peer=%s HTTP request header over "
                        "%d bytes", (unsigned long long)c->id, c->peer,
                        PREAMBLE_MAX);
            tp_conn_close(c, "HTTP header too long");
        }
        return false;
    }
    size_t hlen = (size_t)(end - p) + 4;
    if (get == 1) {
        char page[1024];
        int len = snprintf(page, sizeof page, HTTP_PAGE,
                           sizeof HTTP_PAGE_BODY - 1, HTTP_PAGE_BODY);
        tp_log_info("net", "conn=%llu peer=%s HTTP GET answered with the "
                    "information page", (unsigned long long)c->id, c->peer);
        tp_conn_send_text(c, page, (size_t)len, NULL);
        tp_conn_close(c, "HTTP GET answered");
        return false;
    }
    tp_conn_send_text(c, HTTP_TUNNEL_OK, sizeof HTTP_TUNNEL_OK - 1, NULL);
    tp_buf_consume(&c->in, hlen);
    c->sniff = false;
    c->tunnelled = true;
    tp_log_info("net", "conn=%llu peer=%s HTTP tunnel open (%zu header "
                "bytes)", (unsigned long long)c->id, c->peer, hlen);
    return true;
}
