/* The .cfg reader: expression values (Python semantics), comments, bare words, multi-line
 * lists, entry positions, --set, and every syntax error with its message and line:col. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vd_test.h"
#include "vdvae/config.h"

/* Python-style text of a value. */
static char *repr(const vd_value *v) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vd_value_print(f, v);
    fclose(f);
    return buf;
}

/* "[s]\nk = <expr>\n" must parse, and k's value print as want. */
static void expect_value(const char *expr, const char *want) {
    char text[4096];
    snprintf(text, sizeof text, "[s]\nk = %s\n", expr);
    vd_cfg cfg = {0};
    vd_err err = {0};
    vd_status st = vd_cfg_parse(&cfg, text, strlen(text), "t.cfg", &err);
    CHECKF(st == VD_OK, "k = %s: %s", expr, err.msg);
    const vd_cfg_entry *e = vd_cfg_find(&cfg, "s", "k");
    CHECKF(e != NULL, "k = %s: no entry", expr);
    if (e) {
        char *got = repr(&e->value);
        CHECKF(!strcmp(got, want), "k = %s gave %s, want %s", expr, got, want);
        free(got);
    }
    vd_cfg_free(&cfg);
}

/* text must fail with VD_ERR_INVALID, a message starting with at ("t.cfg:2:5:") and
 * containing frag, and leave the cfg untouched. */
static void expect_error(const char *text, const char *at, const char *frag) {
    vd_cfg cfg = {0};
    vd_err err = {0};
    vd_status st = vd_cfg_parse(&cfg, text, strlen(text), "t.cfg", &err);
    CHECKF(st == VD_ERR_INVALID, "%s: status %d, want invalid", text, st);
    CHECKF(!strncmp(err.msg, at, strlen(at)), "%s: message '%s' does not start with '%s'", text,
           err.msg, at);
    CHECKF(strstr(err.msg, frag) != NULL, "%s: message '%s' lacks '%s'", text, err.msg, frag);
    CHECKF(cfg.n == 0, "%s: a failed parse left %zu entries", text, cfg.n);
    vd_cfg_free(&cfg);
}

static void test_numbers(void) {
    expect_value("42", "42");
    expect_value("-250.", "-250.0");
    expect_value("8.", "8.0");
    expect_value(".5", "0.5");
    expect_value("1e-3", "0.001");
    expect_value("1E+2", "100.0");
    expect_value("1.e5", "100000.0");
    expect_value("0.6931472", "0.6931472");
    expect_value("9223372036854775807", "9223372036854775807");
    expect_value("+3", "3");
    expect_value("- -3", "3");
    expect_value("True", "True");
    expect_value("False", "False");
    expect_value("None", "None");
}

static void test_arithmetic(void) {
    expect_value("2 + 3 * 4", "14");
    expect_value("(2 + 3) * 4", "20");
    expect_value("2 * 3 + 4 * 5", "26");
    expect_value("10 - 4 - 3", "3");
    expect_value("32 * 2", "64");
    expect_value("7 / 2", "3.5");
    expect_value("6 / 3", "2.0");
    expect_value("7 // 2", "3");
    expect_value("-7 // 2", "-4");
    expect_value("7 // -2", "-4");
    expect_value("-8 // 2", "-4");
    expect_value("7.5 // 2", "3.0");
    expect_value("-7.5 // 2", "-4.0");
    expect_value("2 * 3.0", "6.0");
    expect_value("1 + 0.5", "1.5");
    expect_value("2 ** 10", "1024");
    expect_value("-2 ** 2", "-4");
    expect_value("2 ** -1", "0.5");
    expect_value("2 ** 3 ** 2", "512");
    expect_value("10**12", "1000000000000");
    expect_value("100 // 7 * 7", "98");
    expect_value("1 - -1", "2");
    expect_value("max(3, 7, 5)", "7");
    expect_value("min(3, 7, 5)", "3");
    expect_value("max([4, 2, 9])", "9");
    expect_value("min((4, 2, 9))", "2");
    expect_value("max(1, 2.5)", "2.5");
    expect_value("max(2, 2.0)", "2");
    expect_value("max(32 // 4, 3) * 2", "16");
    expect_value("min (1, 2)", "1");
}

static void test_sequences(void) {
    expect_value("[1] * 3 + [2]", "[1, 1, 1, 2]");
    expect_value("3 * [7]", "[7, 7, 7]");
    expect_value("[1, 2] * 0", "[]");
    expect_value("[1] * -2", "[]");
    expect_value("[]", "[]");
    expect_value("[1, 2,]", "[1, 2]");
    expect_value("[0.25] * 2 + [1.]", "[0.25, 0.25, 1.0]");
    expect_value("[[1, 2]] * 2", "[[1, 2], [1, 2]]");
    expect_value("(1, 1)", "(1, 1)");
    expect_value("(1,)", "(1,)");
    expect_value("()", "()");
    expect_value("(5)", "5");
    expect_value("((5))", "5");
    expect_value("(1, 2) + (3,)", "(1, 2, 3)");
    expect_value("(0,) * 3", "(0, 0, 0)");
    expect_value("[0.8, ('linear', 0.7, 0.9)]", "[0.8, ('linear', 0.7, 0.9)]");
    expect_value("[1] * 11 + [2] + [1] * 6 + [2] + [1] * 6 + [2] + [1] * 3 + [4] + [1] * 3",
                 "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, "
                 "1, 1, 1, 4, 1, 1, 1]");
    expect_value("[max(1, 2), -1, 2 * 2]", "[2, -1, 4]");
}

static void test_strings(void) {
    expect_value("'cifar-10'", "'cifar-10'");
    expect_value("\"x'y\"", "'x\\'y'");
    expect_value("'a#b'  # a comment", "'a#b'");
    expect_value("'ab' + 'cd'", "'abcd'");
    expect_value("'\\x41\\t\\\\'", "'A\\t\\\\'");
    expect_value("'\\q'", "'\\\\q'");
    expect_value("''", "''");
    /* bare words: the rest of the line, comment and trailing spaces removed */
    expect_value("cifar10_baseline", "'cifar10_baseline'");
    expect_value("cifar-10   # the dataset", "'cifar-10'");
    expect_value("my run name", "'my run name'");
    expect_value("Truely", "'Truely'");
    expect_value("maximum", "'maximum'");
    expect_value("abc", "'abc'");
}

static void test_layout(void) {
    const char *text =
        "# leading comment\n"
        "; configparser-style comment\n"
        "\n"
        "[run]   # trailing comment after a header\n"
        "name = cifar10_baseline  # bare word\n"
        "  seed = 420\n"
        "[model]\n"
        "up = [1, 2,  # first\n"
        "      3,     # second\n"
        "\n"
        "]\n"
        "pair = (1,\n"
        "        1)\n"
        "after = 4\n";
    vd_cfg cfg = {0};
    vd_err err = {0};
    CHECKF(vd_cfg_parse(&cfg, text, strlen(text), "t.cfg", &err) == VD_OK, "%s", err.msg);
    CHECK(cfg.n == 5);
    const vd_cfg_entry *e = vd_cfg_find(&cfg, "run", "seed");
    CHECK(e && e->value.kind == VD_VAL_INT && e->value.i == 420 && e->line == 6 && e->col == 3);
    CHECK(e && !strcmp(e->file, "t.cfg"));
    e = vd_cfg_find(&cfg, "run", "name");
    CHECK(e && e->value.kind == VD_VAL_STR && !strcmp(e->value.s, "cifar10_baseline"));
    e = vd_cfg_find(&cfg, "model", "up");
    CHECK(e && e->value.kind == VD_VAL_LIST && e->value.n == 3 && e->value.items[2].i == 3);
    CHECK(e && e->line == 8 && e->col == 1);
    e = vd_cfg_find(&cfg, "model", "pair");
    CHECK(e && e->value.kind == VD_VAL_TUPLE && e->value.n == 2);
    e = vd_cfg_find(&cfg, "model", "after");
    CHECK(e && e->value.i == 4 && e->line == 14);
    CHECK(vd_cfg_find(&cfg, "run", "up") == NULL);
    CHECK(vd_cfg_find(&cfg, "nope", "up") == NULL);
    vd_cfg_free(&cfg);
    CHECK(cfg.n == 0 && cfg.entries == NULL);

    /* CRLF line ends and no newline at the end */
    const char *crlf = "[s]\r\na = 1\r\nb = name\r\nc = [1,\r\n 2]";
    CHECKF(vd_cfg_parse(&cfg, crlf, strlen(crlf), "crlf.cfg", &err) == VD_OK, "%s", err.msg);
    e = vd_cfg_find(&cfg, "s", "b");
    CHECK(e && e->value.kind == VD_VAL_STR && !strcmp(e->value.s, "name"));
    e = vd_cfg_find(&cfg, "s", "c");
    CHECK(e && e->value.n == 2);
    /* a second parse adds its entries and replaces keys that were set before */
    const char *more = "[s]\na = 5\nd = 6\n";
    CHECKF(vd_cfg_parse(&cfg, more, strlen(more), "more.cfg", &err) == VD_OK, "%s", err.msg);
    CHECK(cfg.n == 4);
    e = vd_cfg_find(&cfg, "s", "a");
    CHECK(e && e->value.i == 5 && !strcmp(e->file, "more.cfg"));
    vd_cfg_free(&cfg);

    /* text need not be NUL-terminated: only len bytes count */
    const char *cut = "[s]\na = 12345";
    CHECKF(vd_cfg_parse(&cfg, cut, strlen(cut) - 3, "cut.cfg", &err) == VD_OK, "%s", err.msg);
    e = vd_cfg_find(&cfg, "s", "a");
    CHECK(e && e->value.i == 12);
    vd_cfg_free(&cfg);
}

static void test_print(void) {
    vd_value items[3] = {{.kind = VD_VAL_STR, .s = "linear"}, {.kind = VD_VAL_FLOAT, .f = 0.7},
                         {.kind = VD_VAL_FLOAT, .f = 0.9}};
    vd_value t = {.kind = VD_VAL_TUPLE, .items = items, .n = 3};
    char *s = repr(&t);
    CHECKF(!strcmp(s, "('linear', 0.7, 0.9)"), "%s", s);
    free(s);
    vd_value f = {.kind = VD_VAL_FLOAT, .f = 1e-8};
    s = repr(&f);
    CHECKF(!strcmp(s, "1e-08"), "%s", s);
    free(s);
    f.f = 0.1;
    s = repr(&f);
    CHECKF(!strcmp(s, "0.1"), "%s", s);
    free(s);
    CHECK(!strcmp(vd_value_kind_str(VD_VAL_LIST), "list"));
    CHECK(!strcmp(vd_value_kind_str(VD_VAL_STR), "string"));
    CHECK(!strcmp(vd_value_kind_str(VD_VAL_TUPLE), "tuple"));
    vd_value_free(NULL);
}

static void test_errors(void) {
    expect_error("[s]\na = [1, 2\n", "t.cfg:2:5:", "unterminated list");
    expect_error("[s]\na = [1, 2", "t.cfg:2:5:", "unterminated list");
    expect_error("[s]\na = [1,\nb = 2\n", "t.cfg:2:5:", "unterminated list");
    expect_error("[s]\na = [1\n[t]\nb = 2\n", "t.cfg:2:5:", "unterminated list");
    expect_error("[s]\na = [1,\n[t]\n", "t.cfg:2:5:", "unterminated list");
    expect_error("[s]\na = 'abc\n", "t.cfg:2:5:", "unterminated string");
    expect_error("[s]\na = \"abc", "t.cfg:2:5:", "unterminated string");
    expect_error("[s]\na = (1 + 2\n", "t.cfg:2:5:", "unterminated parenthesis");
    expect_error("[s]\na = max(1, 2\nb = 1\n", "t.cfg:2:8:", "unterminated parenthesis");
    expect_error("[s]\na = 1 / 0\n", "t.cfg:2:7:", "division by zero");
    expect_error("[s]\na = 5 // 0\n", "t.cfg:2:7:", "division by zero");
    expect_error("[s]\na = 1.5 / 0.0\n", "t.cfg:2:9:", "division by zero");
    expect_error("[s]\na = 0 ** -1\n", "t.cfg:2:7:", "division by zero");
    expect_error("[s]\na = 1 2\n", "t.cfg:2:7:", "unexpected '2' after the value");
    expect_error("[s]\na = [1] ]\n", "t.cfg:2:9:", "unexpected ']' after the value");
    expect_error("[s]\na = 'x' y\n", "t.cfg:2:9:", "unexpected 'y' after the value");
    expect_error("[s]\na = 8abc\n", "t.cfg:2:6:", "unexpected 'a' after the value");
    expect_error("[s]\na = [0] * 10**12\n", "t.cfg:2:9:", "limit of 65536 items");
    expect_error("[s]\na = [0]*1000000000\n", "t.cfg:2:8:", "limit of 65536 items");
    expect_error("[s]\na = 1000000000 * [0, 1]\n", "t.cfg:2:16:", "limit of 65536 items");
    expect_error("[s]\na = [0] * 65536 + [1]\n", "t.cfg:2:17:", "limit of 65536 items");
    expect_error("[s]\na = [[0] * 60000] * 60000\n", "t.cfg:2:19:", "too large");
    expect_error("a = 1\n", "t.cfg:1:1:", "outside any section");
    expect_error("# c\n\n  seed = 1\n[run]\n", "t.cfg:3:3:", "key 'seed' is outside any section");
    expect_error("[s]\na = 1\nb = 2\na = 3\n", "t.cfg:4:1:", "duplicate key 'a' in [s] (first set at line 2)");
    expect_error("[s]\na = 1\n[t]\n[s]\na = 3\n", "t.cfg:5:1:", "duplicate key 'a'");
    expect_error("[s]\na =\n", "t.cfg:2:4:", "empty value");
    expect_error("[s]\na =   # nothing\n", "t.cfg:2:7:", "empty value");
    expect_error("[s]\na =", "t.cfg:2:4:", "empty value");
    expect_error("[s]\na 1\n", "t.cfg:2:3:", "expected '=' after key 'a'");
    expect_error("[s]\n= 1\n", "t.cfg:2:1:", "expected a key, a [section] or a comment");
    expect_error("[s\na = 1\n", "t.cfg:1:1:", "unterminated section header");
    expect_error("[s] x\n", "t.cfg:1:5:", "unexpected 'x' after the section header");
    expect_error("[ ]\n", "t.cfg:1:1:", "empty section name");
    expect_error("[s]\na = 9223372036854775808\n", "t.cfg:2:5:", "too large");
    expect_error("[s]\na = 9223372036854775807 + 1\n", "t.cfg:2:25:", "integer overflow");
    expect_error("[s]\na = 2 ** 64\n", "t.cfg:2:7:", "integer overflow");
    expect_error("[s]\na = -9223372036854775807 - 2\n", "t.cfg:2:26:", "integer overflow");
    expect_error("[s]\na = 1e999\n", "t.cfg:2:5:", "out of range");
    expect_error("[s]\na = 1e308 * 10\n", "t.cfg:2:11:", "float overflow");
    expect_error("[s]\na = 1e\n", "t.cfg:2:5:", "exponent without digits");
    expect_error("[s]\na = [foo]\n", "t.cfg:2:6:", "unknown name 'foo'");
    expect_error("[s]\na = 1 + x\n", "t.cfg:2:9:", "unknown name 'x'");
    expect_error("[s]\na = [1] + 2\n", "t.cfg:2:9:", "unsupported operand types for +: list and int");
    expect_error("[s]\na = [1] + (2,)\n", "t.cfg:2:9:", "list and tuple");
    expect_error("[s]\na = 'x' * 2\n", "t.cfg:2:9:", "unsupported operand types for *: string and int");
    expect_error("[s]\na = [1] * 2.0\n", "t.cfg:2:9:", "list and float");
    expect_error("[s]\na = True + 1\n", "t.cfg:2:10:", "bool and int");
    expect_error("[s]\na = -'x'\n", "t.cfg:2:5:", "bad operand type for unary -: string");
    expect_error("[s]\na = (-8) ** 0.5\n", "t.cfg:2:10:", "fractional power");
    expect_error("[s]\na = max(1)\n", "t.cfg:2:5:", "max() needs two or more arguments");
    expect_error("[s]\na = min()\n", "t.cfg:2:5:", "min() needs two or more arguments");
    expect_error("[s]\na = max([])\n", "t.cfg:2:5:", "empty sequence");
    expect_error("[s]\na = max('a', 'b')\n", "t.cfg:2:5:", "max() takes numbers, got string 'a'");
    expect_error("[s]\na = 1 +\n", "t.cfg:2:8:", "expected a value, got end of line");
    expect_error("[s]\na = 1 + # c\n", "t.cfg:2:9:", "expected a value, got a comment");
    expect_error("[s]\na = [1 2]\n", "t.cfg:2:8:", "expected ',' or ']', got '2'");
    expect_error("[s]\na = '\\x4'\n", "t.cfg:2:8:", "two hex digits");
    expect_error("[s]\na = '\\x00'\n", "t.cfg:2:8:", "NUL character");
    expect_error("[s]\na = @\n", "t.cfg:2:5:", "expected a value, got '@'");
    expect_error("[s]\na = 1\nb = \x01\n", "t.cfg:3:5:", "byte 0x01");
    char deep[512] = "[s]\na = ";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    for (int i = 0; i < 100; i++) strcat(deep, "]");
    expect_error(deep, "t.cfg:2:", "nested too deeply");
    char minus[512] = "[s]\na = ";
    for (int i = 0; i < 100; i++) strcat(minus, "-");
    strcat(minus, "1");
    expect_error(minus, "t.cfg:2:", "nested too deeply");
}

/* "max 1" is not a call, so it is the bare word 'max 1'. */
static void test_bare_word_edge(void) {
    expect_value("max 1", "'max 1'");
}

static void test_nul(void) {
    const char text[] = "[s]\na = 1\0\n";
    vd_cfg cfg = {0};
    vd_err err = {0};
    vd_status st = vd_cfg_parse(&cfg, text, sizeof text - 1, "t.cfg", &err);
    CHECKF(st == VD_ERR_INVALID && !strncmp(err.msg, "t.cfg:2:6: NUL byte", 19), "%s", err.msg);
    CHECK(cfg.n == 0);
}

static void test_set(void) {
    vd_cfg cfg = {0};
    vd_err err = {0};
    const char *text = "[run]\nseed = 1\n";
    CHECK(vd_cfg_parse(&cfg, text, strlen(text), "t.cfg", &err) == VD_OK);
    CHECKF(vd_cfg_set(&cfg, "run.seed=7", &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_cfg_set(&cfg, " model.up_strides = [1] * 3 + [2]  # why", &err) == VD_OK, "%s", err.msg);
    CHECKF(vd_cfg_set(&cfg, "run.name=my_run", &err) == VD_OK, "%s", err.msg);
    CHECK(cfg.n == 3);
    const vd_cfg_entry *e = vd_cfg_find(&cfg, "run", "seed");
    CHECK(e && e->value.i == 7 && !strcmp(e->file, "--set") && e->line == 1 && e->col == 1);
    e = vd_cfg_find(&cfg, "model", "up_strides");
    CHECK(e && e->value.kind == VD_VAL_LIST && e->value.n == 4 && e->value.items[3].i == 2);
    CHECK(e && e->col == 2);
    e = vd_cfg_find(&cfg, "run", "name");
    CHECK(e && e->value.kind == VD_VAL_STR && !strcmp(e->value.s, "my_run"));

    struct { const char *set, *at, *frag; } bad[] = {
        {"run.seed", "--set:1:1:", "expected section.key=value, got 'run.seed'"},
        {"seed=1", "--set:1:1:", "expected section.key=value"},
        {".seed=1", "--set:1:1:", "expected section.key=value"},
        {"run.=1", "--set:1:1:", "expected section.key=value"},
        {"run.se-ed=1", "--set:1:7:", "invalid character in key"},
        {"run.seed=", "--set:1:10:", "empty value"},
        {"run.seed=[1", "--set:1:10:", "unterminated list"},
        {"run.seed=1 2", "--set:1:12:", "unexpected '2' after the value"},
        {"run.seed=1/0", "--set:1:11:", "division by zero"},
        {"run.seed=1\n2", "--set:1:11:", "single line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_status st = vd_cfg_set(&cfg, bad[i].set, &err);
        CHECKF(st == VD_ERR_INVALID, "%s: status %d", bad[i].set, st);
        CHECKF(!strncmp(err.msg, bad[i].at, strlen(bad[i].at)) && strstr(err.msg, bad[i].frag),
               "%s: got '%s', want '%s ... %s'", bad[i].set, err.msg, bad[i].at, bad[i].frag);
    }
    CHECK(cfg.n == 3);
    vd_cfg_free(&cfg);
}

static void test_file(void) {
    vd_cfg cfg = {0};
    vd_err err = {0};
    vd_status st = vd_cfg_parse_file(&cfg, "/nonexistent/dir/x.cfg", &err);
    CHECK(st == VD_ERR_IO);
    CHECKF(strstr(err.msg, "/nonexistent/dir/x.cfg") != NULL, "%s", err.msg);
    char path[] = "/tmp/vd_cfg_reader_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    const char *text = "[data]\ntarget_res = 16 * 2\n[run]\nname = 'bad\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    st = vd_cfg_parse_file(&cfg, path, &err);
    char want[128];
    snprintf(want, sizeof want, "%s:4:8: unterminated string", path);
    CHECKF(st == VD_ERR_INVALID && !strncmp(err.msg, want, strlen(want)), "%s", err.msg);
    unlink(path);
}

/* Random token soup must parse or fail cleanly: no crash, no leak (under ASan), only
 * VD_OK or VD_ERR_INVALID, and a failure message that names the file. */
static void test_soup(void) {
    static const char *const tokens[] = {
        "[", "]", "(", ")", ",", "+", "-", "*", "/", "//", "**", "=", "\n", " ", "#", "'",
        "\"", "1", "0", "8.", ".5", "1e3", "65536", "10**12", "True", "None", "max(", "min(",
        "[model]", "a", "key = ", "up_strides = ", "'linear'", "\\", "\t", "\r\n", ";"};
    uint64_t s = 0x9e3779b97f4a7c15u;
    int ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char text[600] = "";
        size_t n = 0;
        int len = 1 + (int)(s % 40);
        for (int j = 0; j < len; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            const char *t = tokens[s % (sizeof tokens / sizeof tokens[0])];
            size_t tl = strlen(t);
            if (n + tl >= sizeof text) break;
            memcpy(text + n, t, tl + 1);
            n += tl;
        }
        vd_cfg cfg = {0};
        vd_err err = {0};
        vd_status st = vd_cfg_parse(&cfg, text, n, "r.cfg", &err);
        CHECKF(st == VD_OK || st == VD_ERR_INVALID, "status %d for '%s'", st, text);
        if (st) CHECKF(!strncmp(err.msg, "r.cfg:", 6), "'%s' for '%s'", err.msg, text);
        ok += st == VD_OK;
        vd_cfg_free(&cfg);
    }
    CHECKF(ok > 0, "no random text parsed at all (%d)", ok);
}

int main(void) {
    test_numbers();
    test_arithmetic();
    test_sequences();
    test_strings();
    test_layout();
    test_print();
    test_errors();
    test_bare_word_edge();
    test_nul();
    test_set();
    test_file();
    test_soup();
    return vd_test_result("test_cfg_reader");
}
