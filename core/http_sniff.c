/*
 * http_sniff.c: HTTP preambles before TP (see http_sniff.h).
 */
#include "http_sniff.h"

#include <stdio.h>
#include <string.h>

#include "framing.h"
#include "http.h"
#include "log.h"

/* The HTTP request header before a tunnel, at most. */
#define PREAMBLE_MAX 8192

static const char HTTP_NOT_ALLOWED[] =
    "HTTP/1.0 405 Method Not Allowed\r\n"
    "Allow: GET, POST\r\n"
    "Content-Length: 0\r\n\r\n";
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

bool tp_http_sniff(tp_conn_t *c)
{
    const uint8_t *p = c->in.data;
    size_t n = c->in.len;
    if (n == 0)
        return false;
    /* Raw TP: its frames start with "TP" (PROTOCOL.md 3.1). */
    if (p[0] == 'T' && (n < 2 || p[1] == 'P')) {
        if (n < 2)
            return false;
        c->sniff = false;
        return true;
    }
    size_t hlen = 0;
    switch (tp_http_preamble(p, n, PREAMBLE_MAX, &hlen)) {
    case TP_PRE_MORE:
        return false;
    case TP_PRE_TOO_LONG:
        tp_log_info("net", "conn=%llu peer=%s HTTP request header over "
                    "%d bytes", (unsigned long long)c->id, c->peer,
                    PREAMBLE_MAX);
        tp_conn_close(c, "HTTP header too long");
        return false;
    case TP_PRE_BAD:
        tp_conn_send_text(c, TP_MSG_NOT_TP, sizeof TP_MSG_NOT_TP - 1,
                          "neither TP nor HTTP");
        return false;
    case TP_PRE_OTHER:
        tp_conn_send_text(c, HTTP_NOT_ALLOWED, sizeof HTTP_NOT_ALLOWED - 1,
                          "HTTP method other than POST or GET");
        return false;
    case TP_PRE_GET: {
        char page[1024];
        int len = snprintf(page, sizeof page, HTTP_PAGE,
                           sizeof HTTP_PAGE_BODY - 1, HTTP_PAGE_BODY);
        tp_log_info("net", "conn=%llu peer=%s HTTP GET answered with the "
                    "information page", (unsigned long long)c->id, c->peer);
        tp_conn_send_text(c, page, (size_t)len, NULL);
        tp_conn_close(c, "HTTP GET answered");
        return false;
    }
    case TP_PRE_POST:
        break;
    }
    tp_conn_send_text(c, HTTP_TUNNEL_OK, sizeof HTTP_TUNNEL_OK - 1, NULL);
    tp_buf_consume(&c->in, hlen);
    c->sniff = false;
    c->tunnelled = true;
    tp_log_info("net", "conn=%llu peer=%s HTTP tunnel open (%zu header "
                "bytes)", (unsigned long long)c->id, c->peer, hlen);
    return true;
}
