/* version.h: the server's version, shown to clients and in --version. */
#ifndef TP_VERSION_H
#define TP_VERSION_H
#define TP_VERSION_STRING "0.1.0"
#endif
