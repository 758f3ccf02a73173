/* suggest.c - "did you mean ...?" for unknown keys, sections and enum values. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "feed/config.h"

/* Levenshtein distance, case-insensitive; strings longer than 63 characters compare as far. */
int feed_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 1000;
    int prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int best = prev[j - 1] + cost;
            if (prev[j] + 1 < best) best = prev[j] + 1;
            if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* A suggestion is worth making when it is close relative to the word's length. */
static int close_enough(const char *word, int dist) {
    int len = (int)strlen(word);
    int limit = len <= 2 ? 0 : len <= 4 ? 1 : len <= 8 ? 2 : 3;
    return dist <= limit;
}

const char *feed_cfg_suggest_key(const char *section, const char *key) {
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < feed_cfg_num_keys; i++) {
        if (strcmp(feed_cfg_keys[i].section, section) != 0) continue;
        int d = feed_edit_distance(key, feed_cfg_keys[i].key);
        if (d < best_d) best_d = d, best = feed_cfg_keys[i].key;
    }
    return best && close_enough(key, best_d) ? best : NULL;
}

const char *feed_cfg_suggest_section(const char *section) {
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < feed_cfg_num_keys; i++) {
        int d = feed_edit_distance(section, feed_cfg_keys[i].section);
        if (d < best_d) best_d = d, best = feed_cfg_keys[i].section;
    }
    return best && close_enough(section, best_d) ? best : NULL;
}

const char *feed_cfg_suggest_choice(const char *const *choices, const char *value) {
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; choices[i]; i++) {
        int d = feed_edit_distance(value, choices[i]);
        if (d < best_d) best_d = d, best = choices[i];
    }
    return best && close_enough(value, best_d) ? best : NULL;
}

int feed_cfg_find(const char *section, const char *key) {
    for (int i = 0; i < feed_cfg_num_keys; i++)
        if (strcmp(feed_cfg_keys[i].section, section) == 0 && strcmp(feed_cfg_keys[i].key, key) == 0)
            return i;
    return -1;
}

/* Keys of earlier versions that now live elsewhere. */
static const struct {
    const char *section, *key, *now;
} moved_keys[] = {
    {"feed", "teachers", "[distill] teachers"},
    {"feed", "local_teachers", "[distill] source = local"},
    {"feed", "transfer", "[transport] dtype"},
    {"feed", "credits", "[transport] credits"},
    {"feed", "teacher_timeout", "[transport] timeout"},
};

const char *feed_cfg_moved_key(const char *section, const char *key) {
    for (size_t i = 0; i < sizeof moved_keys / sizeof moved_keys[0]; i++)
        if (strcmp(moved_keys[i].section, section) == 0 && strcmp(moved_keys[i].key, key) == 0)
            return moved_keys[i].now;
    return NULL;
}
