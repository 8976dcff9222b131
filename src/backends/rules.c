/* rules.c — the offline rules planner (the built-in default backend). It reads
 * an instruction with tables of phrases (PCRE2, compiled once per backend):
 * signal phrases set flags ("sort numerically", "count per file"), slot
 * phrases extract arguments (quoted strings, search terms, globs, numbers,
 * columns, directories). A fixed stage order then composes the pipeline:
 * source (grep/find/ls) -> filter -> extract -> transform -> aggregate -> limit
 * -> count, chained with input_from_task. Every tool it uses must be in the
 * registry; when nothing matches, the registry's own patterns are tried, and
 * failing that it declines (AGX_ERR_PARSE) instead of inventing a plan. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agx/planner.h"
#include "agx/util.h"

/* ------------------------------------------------------------------ tables */

/* Boolean signals: one phrase regex each (case-insensitive). */
typedef enum {
    F_COUNT, F_WORDS, F_CHARS, F_BYTES, F_FILES, F_LINES, F_PER_FILE, F_PER_ITEM, F_LEAST,
    F_SORT, F_NUMERIC, F_REVERSE, F_UNIQUE, F_CASE, F_BLANK, F_UPPER, F_LOWER, F_LIST, F_LONG,
    F_HIDDEN, F_SHOW, F_JSON, F_PRETTY, F_KEYS, F_FIRST_LINE, F_LAST_LINE, F_FILES_WITH,
    F_CSV, F_TSV, F_COLON, F_UNSUPPORTED, F_COUNT_FILES, F_TYPE_FILES, F_SEARCHY,
    F_DIRS, F_REGEX, F_SKIP_HEADER, F_SUM, F_AVERAGE, F_LARGEST, F_SMALLEST, F_EMPTY_FILES,
    F_BY_SIZE, F_BY_TIME, F_DUPS, F_EMPTY_DIRS, F_OLDEST, F_WHICH_MOST, F_ONE_FILE, F_TRAILING_WS,
    F_LEADING_WS, F_SQUEEZE, F_EACH_ITEM, F_SHOW_HEADER, F_FILE_SIZES, F_HOW_MANY_TIMES, F_LINE_LENGTH,
    F_RANKED_LINES, F_ONE_LINE, F_DU, F_DU_EACH, F_RANKED_DIRS, F_PER_EXT, F_LARGE_FIRST, F_SMALL_FIRST,
    F_SYMLINKS, F_BROKEN_LINKS, F_LOC, F_RANKED_FILES, F_FIRST_AND_LAST, F_EVERY_OTHER,
    F_PER_DIR, F_TO_TSV, F_TO_CSV, F_WORDS_PER_LINE, F_NO_EXT, F_HIDDEN_FILES, F_TOTAL_SIZE, F_EXTENSIONS,
    F_EXTREME, F_DIFF, F_COMMON, F_HOME, F_EXECUTABLES, F_CONTENTS_EACH, F_NO_COMMENTS, F_LINE_NUMBERS,
    F_RANKED_NUMBERS, F_RECURSIVE, F_DELETE_PATH, F_WHOLE_WORD, F_SINGLES, F_SORT_LENGTH, F_TO_JSON, F_MINIFY,
    F_COUNT_COLS, F_ONLY_IN, F_DUP_FILES, F_KEEP_ORDER, F_IGNORE_SPACE, F_IGNORE_BLANK_LINES, F_PERMS,
    F_NFLAGS
} flag_id;

/* "ignoring case, whitespace and blank lines": one verb, then the things ignored before
 * the one a flag is about */
#define IGNORING "\\b(?:ignor(?:e|es|ing)|regardless\\s+of|disregard(?:ing)?)\\s+" \
                 "(?:(?:case|white\\s*-?\\s*space|spaces|blank\\s+lines|empty\\s+lines)\\s*(?:,\\s*(?:and\\s+)?|and\\s+|or\\s+))*" \
                 "(?:all\\s+|any\\s+)?(?:the\\s+)?"

#define DIRWORD "(?:director(?:y|ies)|folders?|dirs?)"
/* where an unquoted word, path or number ends: at a space, punctuation, a full
 * stop not followed by a word character, or the end */
#define TOKEN_END "(?=[\\s,;:?!]|[.](?!\\w)|$)"

static const char *const flag_regex[F_NFLAGS] = {
    [F_COUNT] = "\\b(?:count(?:s|ing|ed)?|how\\s+many|number\\s+of|total|tally|wc)\\b",
    [F_WORDS] = "\\bwords?\\b",
    [F_CHARS] = "\\b(?:characters?|chars?)\\b",
    [F_BYTES] = "\\bbytes?\\b",
    [F_FILES] = "\\bfiles?\\b",
    [F_LINES] = "\\b(?:lines?|rows?|entries|records)\\b",
    [F_PER_FILE] = "\\b(?:per|by|for\\s+each|in\\s+each|for\\s+every|in\\s+every|each)\\s+(?:[\\w.+-]+\\s+)?file\\b",
    [F_PER_ITEM] = "\\b(?:occurrences?\\s+of\\s+(?:each|every|all|the\\s+(?:different|distinct|unique))|"
                   "frequenc(?:y|ies)|how\\s+many\\s+times|most\\s+(?:common|frequent|popular|used|active|requested|visited|viewed|accessed)|"
                   "least\\s+(?:common|frequent|popular|used)|histogram|"
                   "per\\s+(?!file\\b)\\w+|(?:each|every)\\s+(?!(?:file|line|row)s?\\b)(?:unique\\s+|distinct\\s+|different\\s+)?\\w+|"
                   "group(?:ed)?\\s+by|duplicate\\s+counts?|"
                   "(?:made|makes|has|have|had|with|sent|got|received|gets)\\s+the\\s+most|"
                   "top\\s+(?:\\d+|ten|five|three|twenty)\\s+(?!(?:lines?|rows?|entries|results?|records|files?|"
                   "director(?:y|ies)|folders?|dirs?|largest|biggest|heaviest|smallest|newest|oldest|latest|"
                   "longest|shortest)\\b)[a-z]\\w*)\\b",
    [F_LEAST] = "\\bleast\\s+(?:common|frequent|popular|used)\\b",
    [F_SORT] = "\\b(?:sort(?:s|ed|ing)?|alphabetical(?:ly)?|in\\s+order|ordered)\\b",
    [F_NUMERIC] = "\\b(?:numeric(?:al(?:ly)?)?|by\\s+(?:number|value|size)|as\\s+numbers)\\b",
    [F_REVERSE] = "\\b(?:reversed?|descending|decreasing|largest\\s+first|highest\\s+first|"
                  "biggest\\s+first|longest\\s+first|in\\s+reverse)\\b",
    [F_UNIQUE] = "\\b(?:unique|uniq|dedup(?:licate)?|de-duplicate|distinct|remove\\s+duplicates?|"
                 "without\\s+duplicates?|no\\s+duplicates?|duplicates?\\s+removed)\\b",
    /* "the permissions of run.sh", "who owns notes.txt": ls -ld */
    [F_PERMS] = "\\b(?:permissions?|perms|access\\s+rights|file\\s+modes?|mode\\s+bits|ownership|"
                "who\\s+owns)\\b",
    /* two files compared: diff -w / diff -B */
    [F_IGNORE_SPACE] = IGNORING "(?:white\\s*-?\\s*spaces?|spaces|spacing|indentation)\\b",
    [F_IGNORE_BLANK_LINES] = IGNORING "(?:blank|empty)\\s+lines\\b",
    /* duplicates dropped where they stand, the first of each kept */
    [F_KEEP_ORDER] = "\\b(?:without\\s+sorting(?:\\s+(?:them|it|the\\s+lines))?|unsorted|"
                     "(?:keep(?:ing)?|preserv(?:e|ing)|retain(?:ing)?|maintain(?:ing)?)\\s+(?:the\\s+|their\\s+)?"
                     "(?:original\\s+|input\\s+|line\\s+|same\\s+)?order(?:\\s+of\\s+(?:the\\s+)?lines)?|"
                     "in\\s+(?:the\\s+|their\\s+)?(?:original|input|same|given)\\s+order)\\b",
    [F_CASE] = IGNORING "case\\b|\\b(?:case[- ]insensitive(?:ly)?|any\\s+case)\\b",
    [F_BLANK] = "\\b(?:remove|delete|drop|strip|skip|without|ignore|exclude|filter\\s+out|no)\\s+"
                "(?:all\\s+|the\\s+|any\\s+)*(?:blank|empty)\\s+lines?\\b|"
                /* "remove trailing whitespace and blank lines": the last of a list after a removal
                 * verb; \\K starts the match at "and", so the words between stay for the others */
                "^(?=.*?\\b(?:remove|delete|drop|strip|exclude|filter\\s+out)\\b).*?\\K(?:\\band|,)\\s*(?:also\\s+)?"
                "(?:all\\s+|the\\s+|any\\s+)*(?:blank|empty)\\s+lines?\\b|\\bnon-?(?:blank|empty)\\s+lines?\\b|"
                "\\blines?\\s+(?:that\\s+|which\\s+)?(?:(?:are|is)\\s+not|aren't|isn't)\\s+(?:blank|empty)\\b",
    [F_UPPER] = "\\b(?:upper[- ]?case|capitali[sz]e|to\\s+upper|all\\s+caps)\\b",
    [F_LOWER] = "\\b(?:lower[- ]?case|to\\s+lower)\\b",
    [F_LIST] = "\\b(?:list|ls|show|display|what|which)\\b(?:\\s+(?:all|the|every|of|are|is|in|me|hidden|my|only))*\\s+"
               "(?:files?|director(?:y|ies)|folders?|contents\\s+of\\s+(?:the\\s+)?(?:directory|folder|dir))\\b",
    [F_LONG] = "\\b(?:details?|detailed|long\\s+format|sizes?|permissions|owners?|timestamps?)\\b",
    [F_HIDDEN] = "\\b(?:hidden|dot\\s*files|including\\s+hidden)\\b",
    [F_SHOW] = "\\b(?:show|print|display|cat|read|view|output|dump|open|see|contents?)\\b",
    [F_JSON] = "\\b(?:json|jq)\\b",
    [F_PRETTY] = "\\b(?:pretty[- ]?print(?:ed)?|pretty|prettify|format(?:ted)?|indent(?:ed)?|beautify)\\b",
    [F_KEYS] = "\\b(?:keys|top-level\\s+fields)\\b",
    [F_FIRST_LINE] = "\\b(?:first|top|opening)\\s+(?:line|row|entry)\\b",
    [F_LAST_LINE] = "\\b(?:last|final|bottom)\\s+(?:line|row|entry)\\b",
    [F_FILES_WITH] = "\\b(?:files?|filenames?|file\\s+names)\\s+(?:(?:in|under|within)\\s+\\S+\\s+)?"
                     "(?:that\\s+|which\\s+)?"
                     "(?:contain|containing|contains|with|mention|mentions|mentioning|matching|match|"
                     "have|having|include|including|reference|references|referencing)\\b",
    [F_CSV] = "\\b(?:csv|comma[- ]separated|commas?)\\b",
    [F_TSV] = "\\b(?:tsv|tab[- ]separated|tabs?)\\b",
    [F_COLON] = "\\b(?:colon[- ]separated|colons?)\\b",
    [F_UNSUPPORTED] = "\\b(e-?mail|send|upload|download|install|compress|zip|unzip|encrypt|decrypt|"
                      "chmod|chown|kill|reboot|shutdown|translate|summari[sz]e|explain|ssh|ftp|ping|"
                      "wget|curl|commit|deploy|compile|rename|move|copy|"
                      "(?:change|set|modify|fix|update|grant|revoke|give|make)\\s+(?:the\\s+)?(?:file\\s+)?"
                      "(?:permissions?|perms|ownership|owner)|"
                      /* deleting or emptying files however they are named ("delete all .tmp files",
                       * "remove the log files older than 7 days", "delete build/", "clear app.log");
                       * the words between may not be about lines ("remove blank lines from files") */
                      "(?:delete|remove|rm|erase|wipe|purge|clean\\s+up|clear|empty|truncate)\\s+"
                      "(?:(?!(?:lines?|rows?|words?|columns?|fields?|from|in|of|containing|with|that|which)\\b)"
                      "[\\w.*-]+\\s+){0,3}(?:files?|director(?:y|ies)|folders?|dirs?)|"
                      "change\\s+(?:the\\s+)?(?:file\\s+)?(?:permissions?|mode|owner(?:ship)?)|"
                      "(?:create|make|touch|write|edit|modify|overwrite|truncate|mkdir)\\s+(?:a\\s+|an\\s+|the\\s+|new\\s+)*"
                      "(?:files?|director(?:y|ies)|folders?)|"
                      "(?:save|write|redirect|store)\\s+(?:\\w+\\s+){0,3}?(?:to|into|in)\\s+(?:a\\s+)?"
                      "(?:file\\b|[\\w.-]+\\.[A-Za-z]\\w*))\\b",
    [F_SEARCHY] = "\\b(?:find|search|grep|show|print|list|lines?|count|which|where|look|get|display|"
                  "filter|match\\w*|contain\\w*|occurrences?|how\\s+many|how\\s+often|appears?|occurs?)\\b",
    [F_DIRS] = "\\b(?:directories|folders|subdirectories|subfolders|dirs)\\b",
    [F_REGEX] = "\\b(?:regex(?:p|es)?|regular\\s+expressions?|extended\\s+pattern)\\b",
    [F_SKIP_HEADER] = "\\b(?:skip|skipping|remove|drop|without|ignore|ignoring|delete|strip|exclude|excluding)\\s+"
                      "(?:the\\s+)?(?:first\\s+line|header(?:\\s+line|\\s+row)?|heading)\\b",
    [F_SUM] = "\\b(?:sum|add\\s+up|total\\s+of)\\b",
    [F_AVERAGE] = "\\b(?:average|mean)\\b",
    /* "the 3 largest .log files" */
    [F_LARGEST] = "\\b(?:largest|biggest|heaviest)\\s+(?:\\d+\\s+)?(?:[\\w.+*-]+\\s+)?files?\\b",
    [F_SMALLEST] = "\\bsmallest\\s+(?:\\d+\\s+)?(?:[\\w.+*-]+\\s+)?files?\\b",
    [F_EMPTY_FILES] = "\\bempty\\s+(?:files?|director(?:y|ies)|folders?|dirs?)\\b",
    [F_EMPTY_DIRS] = "\\bempty\\s+(?:director(?:y|ies)|folders?|dirs?)\\b",
    [F_BY_SIZE] = "\\b(?:by|on)\\s+(?:file\\s+)?size\\b",
    [F_BY_TIME] = "\\b(?:by|on)\\s+(?:(?:modification|modified|change|last\\s+modified)\\s+)?(?:time|date|age)\\b|"
                  "\\bnewest\\s+first\\b|\\bmost\\s+recent(?:ly\\s+modified)?\\s+first\\b|"
                  "\\bmost\\s+recently\\s+(?:modified|changed|updated|edited)\\b|"
                  "\\b(?:newest|latest|oldest)\\s+(?:\\d+\\s+)?files?\\b|"
                  "\\b(?:last|latest)[- ](?:modified|changed|updated|edited)\\b",
    [F_OLDEST] = "\\boldest\\b",
    [F_FILE_SIZES] = "\\b(?:sizes?\\s+of\\s+(?:each|every|all(?:\\s+the)?|the)\\s+files?|file\\s+sizes|"
                     "how\\s+(?:big|large)\\s+(?:each|every|the)\\s+files?\\s+(?:is|are)|"
                     "(?:their|with|and)\\s+(?:their\\s+)?sizes)\\b|"
                     /* with a file named: "the size of README.md", "how big is README.md" (wc -c) */
                     "\\b(?:the\\s+)?size\\s+of\\b|\\bhow\\s+(?:big|large)\\s+(?:is|are)\\b",
    [F_HOW_MANY_TIMES] = "\\bhow\\s+(?:many\\s+times|often)\\b",
    [F_LINE_LENGTH] = "\\b(?:characters?|chars?|length)\\s+(?:in|of|on)\\s+(?:each|every)\\s+line\\b|"
                      "\\bline\\s+lengths?\\b|\\blength\\s+of\\s+(?:each|every)\\s+line\\b",
    /* "the 5 longest lines": ranked by length (awk | sort | head | cut) */
    [F_RANKED_LINES] = "\\b(?:longest|shortest)\\s+(?:\\w+\\s+)?lines?\\b",
    [F_ONE_LINE] = "\\b(?:longest|shortest)\\s+line\\b(?!s)",
    /* sizes of directories: du -sh DIR, or du -h -d 1 DIR | sort -rh for each one
     * (F_DU_EACH) or ranked (F_RANKED_DIRS: "the 5 largest directories", "what
     * is taking up space in /var"; "smallest" sorts the other way) */
    [F_DU] = "\\b(?:disk\\s+usage|du)\\b|"
             "\\bsizes?\\s+of\\s+(?:each|every|all(?:\\s+the)?|the)\\s+(?:[\\w./~-]+\\s+)?(?:sub)?" DIRWORD "\\b|"
             "\\b(?:director(?:y|ies)|folders?)\\s+sizes?\\b|"
             "\\bhow\\s+(?:big|large)\\s+(?:is|are)\\s+(?:the\\s+)?(?:[\\w./~-]+\\s+)?(?:sub)?" DIRWORD "\\b|"
             "\\b(?:space|room)\\s+(?:is\\s+)?(?:used|taken)\\s+by\\b",
    [F_DU_EACH] = "\\b(?:each|every|per|all(?:\\s+the)?)\\s+(?:sub)?" DIRWORD "\\b|\\bsub" DIRWORD "\\b|"
                  "\\b(?:director(?:y|ies)|folders?)\\s+sizes\\b",
    [F_RANKED_DIRS] = "\\b(?:largest|biggest|heaviest|smallest)\\s+(?:\\w+\\s+)?(?:sub)?" DIRWORD "\\b|"
                      "\\b(?:taking|using|eating|hogging|filling)\\s+(?:up\\s+)?"
                      "(?:(?:the\\s+most|all\\s+the|so\\s+much)\\s+)?(?:disk\\s+)?space\\b|\\bspace\\s+hogs?\\b",
    /* ls -S / -t already list the largest / newest first */
    [F_LARGE_FIRST] = "\\b(?:largest|biggest|highest|newest|latest|most\\s+recent)\\s+first\\b",
    [F_SMALL_FIRST] = "\\b(?:smallest|lowest|oldest|least\\s+recent)\\s+first\\b",
    [F_SYMLINKS] = "\\b(?:sym(?:bolic)?[- ]?links?|soft\\s+links?)\\b",
    [F_BROKEN_LINKS] = "\\b(?:broken|dangling|dead)\\s+(?:sym(?:bolic)?[- ]?|soft\\s+)?links?\\b",
    [F_LOC] = "\\b(?:lines\\s+of\\s+code|(?:s)?loc)\\b",
    /* "which file has the most lines": wc -l per file, ranked (the fewest: ascending) */
    [F_RANKED_FILES] = "\\b(?:most|longest|biggest|largest|highest|fewest|least|shortest|smallest|lowest)\\s+"
                       "(?:number\\s+of\\s+)?(?:lines|words)\\b",
    [F_FIRST_AND_LAST] = "\\bfirst\\s+and\\s+(?:the\\s+)?last\\s+lines?\\b",
    [F_EVERY_OTHER] = "\\bevery\\s+(?:other|second|2nd)\\s+(?:line|row)\\b|"
                      "\\b(?:odd|even)(?:-numbered)?\\s+(?:lines|rows)\\b",
    /* "count the .js files in each directory": find -printf '%h\\n' | sort | uniq -c */
    [F_PER_DIR] = "\\b(?:per|in\\s+each|for\\s+each|by|in\\s+every|each)\\s+(?:sub)?" DIRWORD "\\b",
    /* "convert data.csv to tab separated" */
    [F_TO_TSV] = "\\b(?:to|into|as)\\s+(?:tab[- ]separated|tsv|tabs)\\b",
    [F_TO_CSV] = "\\b(?:to|into|as)\\s+(?:comma[- ]separated|csv|commas)\\b",
    [F_WORDS_PER_LINE] = "\\b(?:number\\s+of\\s+words|word\\s+counts?|how\\s+many\\s+words|"
                         "count\\s+(?:the\\s+)?words)\\s+"
                         "(?:in|on|of|per)\\s+(?:each|every)\\s+line\\b|\\bwords\\s+per\\s+line\\b",
    [F_NO_EXT] = "\\b(?:with\\s+no\\s+|without\\s+(?:an?\\s+)?|lacking\\s+(?:an?\\s+)?|missing\\s+(?:an?\\s+)?)"
                 "(?:file\\s+)?"
                 "extensions?\\b",
    /* "find all hidden files" (a tree; "list hidden files" stays ls -a) */
    [F_HIDDEN_FILES] = "\\b(?:find|search\\s+for|locate|look\\s+for)\\s+(?:all\\s+|the\\s+|every\\s+)*"
                       "hidden\\s+files\\b",
    /* "the total size of the .log files": their bytes summed */
    [F_TOTAL_SIZE] = "\\btotal\\s+(?:disk\\s+)?(?:size|bytes|space)\\b|\\bcombined\\s+size\\b",
    [F_EXTENSIONS] = "\\b(?:unique|distinct|different|all\\s+the|which)\\s+(?:file\\s+)?extensions\\b",
    /* the maximum or (flag_says) the minimum of a column */
    [F_EXTREME] = "\\b(?:max(?:imum)?|min(?:imum)?|"
                  "(?:highest|largest|biggest|greatest|lowest|smallest)\\s+(?:value|number))\\b",
    /* two files: "which lines differ between a.txt and b.txt", "lines common to both" */
    [F_DIFF] = "\\b(?:differ(?:s|ence|ences)?|diff|compare)\\b",
    /* "lines in a.txt that are not in b.txt": grep -vxFf b.txt a.txt */
    [F_ONLY_IN] = "\\b(?:not\\s+(?:found\\s+|present\\s+|also\\s+)?in|missing\\s+(?:from|in)|absent\\s+from|"
                  "only\\s+(?:in|found\\s+in))\\b",
    /* "find duplicate files": files whose contents are the same (checksums compared) */
    [F_DUP_FILES] = "\\b(?:duplicated?|identical)\\s+files\\b|\\bfiles\\s+(?:that\\s+are\\s+|which\\s+are\\s+)?"
                    "(?:duplicated|duplicates|identical)\\b|\\bfiles\\s+(?:with|having)\\s+(?:the\\s+)?"
                    "(?:same|identical)\\s+(?:content|contents|data|checksums?|hash(?:es)?)\\b",
    [F_COMMON] = "\\b(?:common\\s+to|in\\s+both|shared\\s+by|appear\\s+in\\s+both|in\\s+common)\\b",
    [F_EXECUTABLES] = "\\bexecutables?\\b|\\bexecutable\\s+files\\b",
    /* "show the contents of every .conf file": the files found, printed */
    [F_CONTENTS_EACH] = "\\bcontents?\\s+of\\s+(?:each|every|all(?:\\s+the)?|the)\\s+(?:[\\w.*+-]+\\s+)?files?\\b",
    [F_NO_COMMENTS] = "\\b(?:remove|strip|delete|drop|without|exclude|excluding|skip|ignore|ignoring|hide)\\s+"
                      "(?:all\\s+|the\\s+|any\\s+)?comments?(?:\\s+lines?)?\\b|\\bnon-?comment\\s+lines\\b",
    /* "the 3 largest numbers": sorted numerically, the smallest (flag_says) ascending */
    [F_RANKED_NUMBERS] = "\\b(?:largest|biggest|highest|greatest|top|smallest|lowest)\\s+(?:\\w+\\s+)?"
                         "(?:numbers|values)\\b",
    /* "delete build/", "truncate app.log": a file or directory named right after the verb
     * (declined before the words can be read as a term: "remove X" filters lines) */
    [F_DELETE_PATH] = "\\b((?:delete|remove|rm|erase|wipe|purge|clear|empty|truncate)\\s+(?:the\\s+)?"
                      "(?:[\\w.-]+/[\\w./-]*|[\\w-]+\\.[A-Za-z]\\w{0,7}))" TOKEN_END,
    /* "list the files in src recursively": ls -R */
    [F_RECURSIVE] = "\\brecursive(?:ly)?\\b",
    /* "show main.c with line numbers": cat -n, grep -n */
    [F_LINE_NUMBERS] = "\\b(?:with|and|including|plus|showing)\\s+(?:the\\s+)?line\\s+numbers?\\b",
    [F_HOME] = "\\b(?:my|your|the|user'?s)\\s+home\\s+(?:directory|folder|dir)\\b",
    /* "'foo' as a whole word": grep -w */
    [F_WHOLE_WORD] = "\\b(?:as\\s+an?\\s+(?:whole|separate|full|complete)\\s+word|(?:whole|full|complete)[- ]words?"
                     "(?:\\s+only)?|on\\s+word\\s+boundaries)\\b",
    /* "lines that appear only once": sort | uniq -u (before F_DUPS, which "non-duplicated" also matches) */
    [F_SINGLES] = "\\b(?:appear|occur)s?\\s+(?:only\\s+|just\\s+|exactly\\s+)?(?:once|one\\s+time)\\b(?!\\s+or\\b)|"
                  "\\bnon-?(?:duplicated?|repeated)\\s+(?:lines?|entries|rows|words?|values)\\b|"
                  "\\b(?:lines?|entries|rows|words?|values)\\s+(?:that\\s+|which\\s+)?(?:are\\s+|is\\s+)?"
                  "(?:not|never)\\s+(?:duplicated|repeated)\\b",
    /* "sort the lines by length": each line behind its length, sorted, the length cut off */
    [F_SORT_LENGTH] = "\\b(?:sort|order|rank)\\w*\\s+(?:the\\s+|all\\s+)?(?:lines\\s+)?by\\s+(?:their\\s+|the\\s+)?"
                      "(?:line\\s+)?length\\b",
    /* "convert the csv to json": jq -R reads the rows */
    [F_TO_JSON] = "\\b(?:to|into|as)\\s+(?:a\\s+)?json(?:\\s+(?:array|objects?))?\\b",
    [F_MINIFY] = "\\b(?:minify|minified|compact(?:ed)?|on\\s+(?:a\\s+single|one)\\s+line)\\b",
    /* "how many columns": the fields of the first line */
    [F_COUNT_COLS] = "\\b(?:count|how\\s+many|number\\s+of)\\s+(?:the\\s+)?(?:columns|fields)\\b(?!\\s+(?:in|on|of|per)\\s+"
                     "(?:each|every)\\b)",
    /* "count files per extension" */
    [F_PER_EXT] = "\\b(?:per|by|for\\s+each|each|every|of\\s+each)\\s+(?:file\\s+)?"
                  "(?:extension|suffix|file\\s*type)s?\\b",
    [F_EACH_ITEM] = "\\b(?:each|every|all(?:\\s+the)?)\\s+(?:items?|objects?|elements?|entries|records)\\b",
    [F_SHOW_HEADER] = "\\b(?:show|print|get|display|see|read)\\s+(?:me\\s+)?(?:only\\s+)?(?:the\\s+)?"
                      "(?:header(?:\\s+line|\\s+row)?|headers|column\\s+names)\\b",
    [F_ONE_FILE] = "\\b(?:the\\s+)?(?:largest|biggest|smallest|newest|oldest|latest|(?:last|latest)[- ]modified|"
                   "most\\s+recently\\s+(?:modified|changed|updated|edited))\\s+file\\b(?!s)",
    [F_TRAILING_WS] = "\\b(?:trailing|ending|end-of-line)\\s+(?:white\\s*space|spaces|blanks)\\b",
    [F_LEADING_WS] = "\\b(?:leading|starting)\\s+(?:white\\s*space|spaces|blanks)\\b|"
                     "\\b(?:remove|strip|delete|drop)\\s+(?:the\\s+)?indentation\\b",
    [F_SQUEEZE] = "\\b(?:squeeze|collapse)\\s+(?:repeated\\s+|multiple\\s+|consecutive\\s+|runs\\s+of\\s+)?"
                  "(?:spaces|blanks|white\\s*space)\\b",
    [F_WHICH_MOST] = "\\b(?:which|what)\\s+(?:is|was|(?:\\w+\\s+){1,3}?(?:made|makes|has|had|sent|got|"
                     "received|appears|occurs|did|does|is|was))\\b[^.?]*?\\bthe\\s+most\\b|"
                     /* one thing named in the singular: "the most requested page", "most common word" */
                     "\\bmost\\s+(?:common|frequent|popular|requested|visited|used|active|seen)\\s+(?:http\\s+)?"
                     "(?:page|path|url|endpoint|ip|ip\\s+address|address|client|word|line|status(?:\\s+code)?|code|"
                     "user(?:\\s+agent)?|agent|referr?er|value|item|name|city|extension|error|entry)\\b",
    [F_DUPS] = "\\b(?:duplicated?|repeated)\\s+(?:lines?|entries|rows|words?|values)\\b|"
               "\\b(?:appear|occur)s?\\s+more\\s+than\\s+once\\b|"
               "\\b(?:lines?|entries|rows|words?|values)\\s+(?:that\\s+|which\\s+)?(?:are|is)\\s+"
               "(?:duplicated|repeated)\\b",
    [F_COUNT_FILES] = "\\b(?:count|how\\s+many|number\\s+of)\\s+(?:the\\s+|all\\s+)?(?:\\S+\\s+)?files\\b",
    [F_TYPE_FILES] = "\\b(?:find|locate|list|show|search\\s+for|look\\s+for)\\s+(?:all\\s+|the\\s+|every\\s+)*"
                     "(?:regular\\s+)?files\\b",
};

/* Slot extractors: a regex with one or two captures and what the capture fills. */
typedef enum {
    S_SORT_KEY, S_FIELD_ORD, S_FIELD_NUM, S_LOG_AGENT, S_LOG_REFERER, S_LOG_IP, S_LOG_STATUS, S_LOG_PATH,
    S_LOG_BYTES, S_LOG_TIME, S_REPLACE,
    S_JSON_KEY, S_NAMED, S_EXT_DOT, S_EXT_WORD, S_FIRST_N, S_MOST_N, S_LAST_N, S_N_LINES,
    S_DIR_UNDER, S_DIR_IN, S_DIR_LIST, S_DIR_NAMED, S_DIR_IN_WORD,
    /* search terms, tried in this order; the first acceptable capture wins */
    S_TERM_INVERT, S_TERM_LINES, S_TERM_SEARCH, S_TERM_CONTAINING, S_TERM_OCCURRENCES, S_TERM_APPEARS,
    S_TERM_IP, S_TERM_LEVEL, S_TERM_CAPS_NOUN, S_TERM_FIND_CAPS, S_TERM_FOR, S_TERM_STATUS, S_TERM_STATUS_LOG,
    S_TERM_START, S_TERM_END, S_TERM_ANY_CAPS,
    S_TERM_EMPTY, S_OR_TERM, S_SIZE, S_MTIME, S_LINE_RANGE, S_LINE_ONE, S_LONGER, S_FIELDS_RANGE,
    S_FIELDS_LIST, S_CONVERT_CHARS, S_LINE_ORD, S_DELETE_CLASS, S_LAST_N2, S_CHARS_RANGE, S_EXT_PAIR,
    S_AFTER_LINE, S_SUPER_N, S_TERM_BOTH, S_OWNER, S_TERM_CAPS_PAIR, S_JSON_ITEMS, S_AGE, S_COL_CMP, S_BUT_NOT,
    S_DROP_LINES, S_DROP_RANGE, S_WS_LINES, S_JOIN, S_AGO, S_NOT_EXT, S_EXCLUDE_DIR, S_NEWER_FILE, S_FROM_END,
    S_BETWEEN, S_NF_CMP, S_AGE_CMP, S_COL_CMP_NAMED, S_EXTREME_NAMED, S_EVERY_NTH, S_TERM_EXACT, S_WRAP, S_CONTEXT, S_SWAP,
    S_CAPITALIZE, S_LAST_CHARS, S_NUMBER_LINES, S_AFTER_MATCH, S_SORT_BY_NAMED, S_TWO_COLS, S_GROUP_AGG, S_DROP_COL,
    S_COL_TEXT, S_LOG_STATUS_IS, S_LOG_PATH_IS, S_RECENT, S_ON_DAY, S_NAME_HAS, S_KNOWN_FILES,
    S_PER_LINE, S_SHUFFLE, S_RANDOM_N, S_CHECKSUM, S_BASE64, S_DUMP, S_SEQ, S_JOIN_FILES, S_JOIN_KEY,
    S_NSLOTS
} slot_id;

#define TERM "('[^']*'|\"[^\"]*\"|`[^`]*`|[^\\s,;]+|[,;])"
#define NUM "(\\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|" \
            "thirty|fifty|hundred)"
#define ORD "(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|\\d+(?:st|nd|rd|th)?)"
#define EXT_WORDS "c|c\\+\\+|cpp|python|rust|go|golang|markdown|json|yaml|yml|shell|bash|javascript|js|" \
                  "typescript|ts|java|ruby|header|text|txt|log|csv|html|css|toml|xml|php|perl|sql"
/* directories a search usually leaves out, known without the word "directory" */
#define SKIP_DIRS "node_modules|vendor|\\.git|\\.svn|\\.hg|build|dist|target|venv|\\.venv|__pycache__|\\.cache|" \
                  "third_party"
/* what a line is called: "the first 3 lines / rows / requests / entries", or an item of a JSON
 * array (a capture: items are dropped by jq, lines by tail and head) */
#define LINE_NOUN "(lines?|rows?|requests?|entries|entry|records?|items?|objects?|elements?)\\b"
#define WORDISH "(?:the\\s+(?:word|string|text|pattern|phrase|term)\\s+|the\\s+|an?\\s+|any\\s+)?"
/* files known by a name without an extension */
#define KNOWN_FILE_NAMES "Makefile|makefile|GNUmakefile|Dockerfile|Containerfile|Jenkinsfile|Vagrantfile|Gemfile|" \
                         "Rakefile|Procfile|Justfile|README|LICENSE|CHANGELOG|CODEOWNERS"
#define PATHTOK "((?:~|\\.{1,2})?/?[\\w.-]+(?:/[\\w.-]*)*)"
/* not a word searched for ("grep for shuffle", "lines containing base64") */
#define NOT_SEARCHED "(?<!\\bfor\\s)(?<!\\bcontaining\\s)(?<!\\bcontain\\s)(?<!\\bword\\s)(?<!\\bgrep\\s)" \
                     "(?<!\\bmatching\\s)(?<!\\bmention\\s)(?<!\\bmentioning\\s)"

static const char *const slot_regex[S_NSLOTS] = {
    [S_SORT_KEY] = "\\bsort\\w*(?:\\s+\\S+){0,4}?\\s+(by\\s+(?:the\\s+)?(?:" ORD "\\s+(?:column|field|col)|"
                   "(?:column|field|col)\\s+(\\d+)))",
    /* "the second word of each line" too, but not "the 10 words" (a count) */
    [S_FIELD_ORD] = "\\b" ORD "\\s+(?:column|field|col)s?\\b|"
                    "\\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|\\d+(?:st|nd|rd|th))\\s+"
                    "word\\b(?!s)",
    [S_FIELD_NUM] = "\\b(?:column|field|col)\\s+(?:number\\s+|#)?(\\d+)\\b",
    [S_LOG_AGENT] = "\\b(user[- ]?agents?|browsers?)\\b",
    [S_LOG_REFERER] = "\\b(referr?ers?|referring\\s+(?:pages?|sites?|urls?))\\b",
    [S_LOG_BYTES] = "\\b(bytes(?:\\s+(?:sent|transferred|served))?|response\\s+sizes?|(?:body|response)\\s+bytes)\\b",
    /* requests per hour: the bucket's length in "[10/Oct/2023:13:55:36" after the '[' */
    [S_LOG_TIME] = "\\b(?:(?:per|by|each|every|for\\s+each|in\\s+each)\\s+(minute|hour|day|date)|(hourly|daily))\\b",
    [S_LOG_IP] = "\\b(ip(?:\\s+address(?:es)?)?s?|clients?(?:\\s+ips?)?|hosts?|visitors?|remote\\s+addr\\w*)\\b",
    [S_LOG_STATUS] = "\\b((?:http\\s+)?status(?:\\s+codes?)?|response\\s+codes?)\\b",
    [S_LOG_PATH] = "\\b(urls?|paths?|pages?|endpoints?|request\\s+paths?)\\b",
    [S_REPLACE] = "\\b(?:replace|substitute|swap)\\s+(?:all\\s+|every\\s+|each\\s+)?(?:occurrences\\s+of\\s+)?" WORDISH TERM
                  "\\s+(?:with|by|to|into|for)\\s+" TERM,
    [S_JSON_KEY] = "(?:\\b(?:field|key|property|attribute|value\\s+of)\\s+(?!\\d)" TERM
                   "|(?:^|\\s)(\\.[A-Za-z_][\\w.]*)|\\b([A-Za-z_][\\w-]*)\\s+(?:field|key|property|attribute)\\b"
                   "|\\b([A-Za-z_][\\w-]*)\\s+(?:of|from|in)\\s+(?:each|every|all(?:\\s+the)?)\\s+"
                   "(?:items?|objects?|elements?|entries|records)\\b)",
    [S_NAMED] = "\\b(?:files?|" DIRWORD ")\\s+(named|called|matching|ending\\s+(?:in|with)|with\\s+(?:the\\s+)?"
                "(?:extension|suffix|name))\\s+" TERM,
    [S_EXT_DOT] = "(?:^|\\s)\\*?(\\.[A-Za-z0-9]{1,8})\\s+(?:source\\s+)?files?\\b",
    [S_EXT_PAIR] = "(?:^|\\s)\\*?(\\.[A-Za-z0-9]{1,8})\\s*(?:and|or|&|,)\\s*\\*?(\\.[A-Za-z0-9]{1,8})\\s+"
                   "(?:source\\s+)?files?\\b",
    [S_AFTER_LINE] = "\\b(?:everything|all|lines?|the\\s+rest)\\s+(after|following|past|from|starting\\s+at)\\s+"
                     "line\\s+(?:number\\s+)?(\\d+)\\b|\\blines?\\s+(from\\s+)?(\\d+)\\s+(?:to|until|through|till)\\s+"
                     "(?:the\\s+)?end\\b",
    [S_EXT_WORD] = "\\b(" EXT_WORDS ")\\s+(?:source\\s+)?(?:files?|scripts?|sources?)\\b",
    /* files left out by kind: "files that are not python files", "non-c files", "files
     * not ending in .c", "all files except .md files" (groups 1-3: a word or an extension) */
    [S_NOT_EXT] = "\\bfiles?\\s+(?:that\\s+|which\\s+)?"
                  "(?:are\\s+not|aren't|(?:do\\s+not|don't)\\s+end\\s+(?:in|with)|not\\s+ending\\s+(?:in|with))\\s+"
                  "(?:an?\\s+)?(\\*?\\.[A-Za-z0-9]{1,8}|" EXT_WORDS ")"
                  "(?:\\s+(?:source\\s+)?files?)?" TOKEN_END "|"
                  "\\bnon-?(" EXT_WORDS ")\\s+(?:source\\s+)?files\\b|"
                  "\\bfiles\\s+(?:except|but\\s+not|other\\s+than|excluding)\\s+(?:for\\s+)?(?:the\\s+)?"
                  "(\\*?\\.[A-Za-z0-9]{1,8}|" EXT_WORDS ")(?:\\s+(?:source\\s+)?(?:files|ones))?" TOKEN_END,
    /* a directory a search leaves out: "excluding node_modules", "but skip the vendor
     * directory" (groups 1-4: a usual build/vendor directory, or any one named as such) */
    [S_EXCLUDE_DIR] = "\\b(?:skip(?:ping)?|exclud(?:e|ing)|ignor(?:e|ing)|except(?:\\s+(?:in|for))?|"
                      "but\\s+not(?:\\s+in)?|not\\s+in(?:side)?|outside(?:\\s+of)?|other\\s+than|apart\\s+from|"
                      "without)\\s+(?:the\\s+)?"
                      "(?:(" SKIP_DIRS ")/?(?:\\s+" DIRWORD ")?|(?:directory|folder|dir)\\s+([\\w.-]+)|"
                      "([\\w.-]+)/?\\s+(?:" DIRWORD "|tree)|([\\w.-]+)/)" TOKEN_END,
    /* "files newer than main.c": find -newer (older: -not -newer) */
    [S_NEWER_FILE] = "\\b(newer|more\\s+recent|older)\\s+than\\s+(?:the\\s+file\\s+)?"
                     "((?:[\\w.-]*/)*[\\w-]+\\.[A-Za-z]\\w{0,7})" TOKEN_END,
    /* "the second to last line": tail -n 2 | head -n 1 */
    [S_FROM_END] = "\\b(?:the\\s+)?(?:(second|third|fourth|fifth|2nd|3rd|4th|5th|next)[- ]to[- ]last|(penultimate))\\s+"
                   "(?:line|row)\\b",
    /* "people older than 30": the age column or key compared */
    [S_AGE_CMP] = "\\b(older|younger)\\s+than\\s+(-?\\d+(?:\\.\\d+)?)\\b",
    /* piped CSV with a header: "rows where age is greater than 30", "where city is paris"
     * (group 1: a column's name, 2: the comparison, 3: a number, or a word for equality) */
    [S_COL_CMP_NAMED] = "\\b(?:where|whose|with|if|when|ha(?:ve|s|ving))\\s+(?:the\\s+|an?\\s+)?(\\w+)\\s+(?:column\\s+|field\\s+)?"
                        "(?:is\\s+|are\\s+)?(greater|more|larger|bigger|higher|over|above|less|smaller|lower|"
                        "under|below|equals?|equal\\s+to|is|of)\\s+(?:than\\s+|to\\s+)?"
                        "(-?\\d+(?:\\.\\d+)?|[A-Za-z][\\w.-]*)\\b",
    /* "the highest age", "the oldest age", "the lowest price": a column's maximum or minimum
     * (group 1: "with the", the row or item that has it; 2 or 4: how many, "the 3 highest ages",
     * "the oldest 2 people"; 3: the word that says which; 5: the column, or what the rows are) */
    [S_EXTREME_NAMED] = "\\b(?:((?:with|having)\\s+the)\\s+)?(?:" NUM "\\s+)?(highest|largest|biggest|greatest|lowest|"
                        "smallest|oldest|youngest|max(?:imum)?|min(?:imum)?)\\s+(?:" NUM "\\s+)?(\\w+)\\b",
    /* "the names sorted by age": the rows ordered by one named column (group 1) */
    [S_SORT_BY_NAMED] = "\\b(?:sort(?:s|ed|ing)?|order(?:ed)?|rank(?:ed)?)\\s+(?:[\\w.]+\\s+){0,3}?by\\s+"
                        "(?:the\\s+|their\\s+|its\\s+)?(\\w+)\\b",
    /* "the name and city columns", "show only name and age": two named columns (group 1: a
     * verb, or 4: a noun, says that they are picked) */
    [S_TWO_COLS] = "(?:\\b(print|show|display|extract|select|keep|get|output|list|only)\\s+(?:only\\s+)?(?:the\\s+)?)?"
                   "\\b(\\w+)\\s*(?:,|and|&)\\s*(?:the\\s+)?(\\w+)\\b(?:\\s+(columns|fields|keys|values|of))?",
    /* "the average age per city": one column aggregated for each value of another (group 1:
     * how, 2: the column aggregated, 3: the one grouped by) */
    [S_GROUP_AGG] = "\\b(average|mean|sum|total|max(?:imum)?|min(?:imum)?|highest|lowest|largest|smallest)\\s+"
                    "(?:of\\s+)?(?:the\\s+)?(\\w+)\\s+(?:per|by|for\\s+each|in\\s+each|grouped\\s+by|for\\s+every)\\s+"
                    "(?:the\\s+)?(\\w+)\\b",
    /* "drop the city column", "remove column 2" (group 1 or 2: a name or number) */
    [S_DROP_COL] = "\\b(?:drop|remove|delete|without|exclud(?:e|ing)|omit|hide|strip)\\s+(?:the\\s+)?"
                   "(?:(\\w+)\\s+(?:column|field|key)|(?:column|field|key)\\s+(\\w+))\\b",
    /* "rows where name starts with b" (group 1: the column, 2: how, 3: the text) */
    [S_COL_TEXT] = "\\b(?:where|whose|with|if|when)\\s+(?:the\\s+)?(\\w+)\\s+(?:column\\s+|field\\s+)?"
                   "(starts?|begins?|ends?|contains?|includes?)\\s+(?:with\\s+|in\\s+)?" WORDISH TERM,
    /* "lines with more than 3 words": awk 'NF > 3' (group 1: the comparison, 2: the count) */
    [S_NF_CMP] = "\\blines?\\s+(?:that\\s+|which\\s+)?(?:with|having|ha(?:ve|s)|contain(?:ing|s)?)\\s+"
                 "(more|fewer|less|over|under|exactly)\\s+(?:than\\s+)?" NUM "\\s+(?:words?|fields?|columns?)\\b",
    /* "lines between START and END": the lines from a match of one to a match of the other */
    [S_BETWEEN] = "\\blines?\\s+(?:from|between)\\s+" WORDISH TERM "\\s+(?:and|to|until|through)\\s+" WORDISH TERM,
    [S_FIRST_N] = "\\b(?:first|top|head|leading|opening|next)\\s+" NUM "\\b",
    [S_MOST_N] = "\\b" NUM "\\s+(?:most|least|top|highest|lowest|biggest|largest|smallest|newest|oldest|"
                 "latest|longest|shortest)\\b",
    [S_JSON_ITEMS] = "\\b(first|top|last)\\s+(?:" NUM "\\s+)?(?:items?|objects?|elements?|entries|records)\\b",
    /* "lines where the third column is greater than 100": awk '$3 > 100' */
    [S_COL_CMP] = "\\b(?:where|whose|with|if|when)\\s+(?:the\\s+)?(?:" ORD "\\s+(?:column|field|col)|"
                  "(?:column|field|col)\\s+(\\d+))\\s+(?:is\\s+|are\\s+)?"
                  "(greater|more|larger|bigger|higher|over|above|less|smaller|lower|under|below|equals?|equal\\s+to|is|of)"
                  "\\s+(?:than\\s+|to\\s+)?(-?\\d+(?:\\.\\d+)?)\\b",
    /* "files that contain TODO but not FIXME": a second, inverted search */
    [S_BUT_NOT] = "\\b(?:but|and)\\s+not\\s+" WORDISH TERM,
    [S_OWNER] = "\\bowned\\s+by\\s+(?:the\\s+)?(?:user\\s+)?([a-z_][\\w-]*)",
    /* "TODO and FIXME": markers in capitals, either one */
    [S_TERM_CAPS_PAIR] = "(?-i)(?:^|\\s)([A-Z][A-Z0-9_]{2,})s?\\s*(?:,|and|&|or|/)\\s*([A-Z][A-Z0-9_]{2,})s?\\b",
    [S_SUPER_N] = "\\b(?:largest|biggest|heaviest|highest|greatest|smallest|lowest|newest|oldest|longest|"
                  "shortest)\\s+" NUM "\\b",
    [S_TERM_BOTH] = "\\bboth\\s+" WORDISH TERM "\\s+and\\s+" WORDISH TERM,
    [S_LAST_N] = "\\b(?:last|bottom|tail|final|trailing|latest|most\\s+recent)\\s+" NUM "\\b",
    [S_LAST_N2] = "\\b" NUM "\\s+(?:most\\s+recent|latest|newest|final)\\s+(?:[a-z]+\\s+)?"
                  "(?:lines?|entries|rows|records|"
                  "messages|log\\s+lines|events|requests)\\b",
    /* "the first 5 characters", "the first character": cut -c1-N */
    [S_CHARS_RANGE] = "\\b(?:first|leading)\\s+(?:" NUM "\\s+(?:characters|chars|letters|(bytes))|"
                      "(?:character|char|letter|(byte)))\\b",
    [S_PER_LINE] = "\\b(?:(?:of|in|on|from)\\s+(?:each|every)\\s+(?:line|row)|per\\s+(?:line|row))\\b",
    /* "the last 3 characters of each line": awk substr */
    [S_LAST_CHARS] = "\\b(?:last|final|trailing)\\s+(?:" NUM "\\s+(?:characters|chars|letters|bytes)|"
                     "(?:character|char|letter|byte))\\b",
    [S_N_LINES] = "\\b(?:show|print|display|get|take|keep|give\\s+me|output)\\s+(?:me\\s+)?(?:only\\s+)?"
                  NUM "\\s+(?:lines?|rows?|entries|results?)\\b",
    [S_DIR_UNDER] = "\\b(?:under|inside|within|beneath|below)\\s+(?:the\\s+)?(?:directory\\s+|folder\\s+|dir\\s+)?"
                    PATHTOK,
    [S_DIR_IN] = "\\b(?:in|from)\\s+(?:the\\s+)?(?:directory|folder|dir)\\s+" PATHTOK,
    [S_DIR_LIST] = "\\b(?:files|contents|entries|everything|directories|folders)\\s+(?:are\\s+|is\\s+)?"
                   "(?:in|of|under)\\s+(?:the\\s+)?" PATHTOK,
    [S_DIR_IN_WORD] = "\\bin\\s+([A-Za-z0-9_~][\\w.~-]*(?:/[\\w.-]+)*/?)" TOKEN_END,
    [S_DIR_NAMED] = "\\b(?:in|from|of|is|are)\\s+(?:the\\s+)?" PATHTOK "\\s+(?:directory|folder|dir|tree)\\b",
    [S_TERM_INVERT] = "\\b(?:exclude|excluding|without|except|skip|skipping|ignore|ignoring|drop|"
                      "filter\\s+out|remove|hide|delete|erase|strip)\\s+"
                      "(?:lines?\\s+|all\\s+|the\\s+|any\\s+|those\\s+|ones\\s+|requests?\\s+|entries\\s+)*"
                      /* "except those from 10.0.0.7": the address is the term */
                      "(?:(?:from|by)\\s+(?=(?:\\d{1,3}\\.){3}\\d{1,3}\\b))?"
                      "(?:that\\s+|which\\s+)?(?:containing\\s+|contain\\s+|with\\s+|matching\\s+|"
                      "match\\s+|mentioning\\s+)?" WORDISH TERM,
    [S_TERM_LINES] = "\\b(?:lines?|entries|rows|records|files?|messages)\\s+(?:that\\s+|which\\s+)?"
                     "(?:(do\\s+not|don't|doesn't|does\\s+not|not)\\s+)?(?:contain(?:s|ing)?|match(?:es|ing)?|"
                     "mention(?:s|ing)?|with|having|ha(?:ve|s)|includ(?:e|es|ing))\\s+" WORDISH TERM,
    [S_TERM_SEARCH] = "\\b(?:search(?:ing)?|grep|look(?:ing)?|scan|hunt)\\s+(?:\\w+ly\\s+)?"
                      "(?:for\\s+|through\\s+\\S+\\s+for\\s+)?"
                      "(?:all\\s+)?" WORDISH TERM,
    [S_TERM_CONTAINING] = "\\b(?:containing|contains|contain|matching|mentioning|mentions?|referencing|references?|"
                          "(?:that|which)\\s+(?:contain|mention|match|include))\\s+" WORDISH TERM,
    [S_TERM_OCCURRENCES] = "\\b(?:occurrences?|instances?|mentions?|count)\\s+of\\s+" WORDISH TERM,
    /* "how many times the word error appears", "how often does foo occur", "count the word error":
     * occurrences of the word */
    [S_TERM_APPEARS] = "\\b(?:(?:the\\s+(?:word|string|text|phrase|term)\\s+|does\\s+(?:the\\s+(?:word|string|text|"
                       "phrase|term)\\s+)?)" TERM "(?=\\s+(?:appears?|occurs?|shows?\\s+up|comes?\\s+up)\\b)|"
                       "count\\s+(?:the\\s+)?(?:word|string|phrase|term)\\s+" TERM ")",
    [S_TERM_CAPS_NOUN] = "(?-i)(?:^|\\s)('[^']*'|\"[^\"]*\"|[A-Z][A-Z0-9_]+)\\s+(?i)(?:lines?|entries|"
                         "messages|comments?|errors|warnings|occurrences|mentions|markers|notes|items)\\b",
    [S_TERM_FIND_CAPS] = "(?-i)\\b(?i:find|show|list|count|get|print|extract|highlight)\\s+"
                         "(?i:all\\s+)?(?i:the\\s+)?([A-Z][A-Z0-9_]{2,})\\b",
    [S_TERM_FOR] = "\\bfor\\s+" WORDISH TERM,
    [S_TERM_START] = "\\b(?:start|starts|starting|begin|begins|beginning)\\s+with\\s+(?:an?\\s+)?" WORDISH TERM,
    [S_TERM_END] = "\\b(?:end|ends|ending)\\s+(?:with|in)\\s+(?:an?\\s+)?" WORDISH TERM,
    [S_TERM_ANY_CAPS] = "(?-i)(?:^|\\s)([A-Z][A-Z0-9_]{2,})s?" TOKEN_END,
    [S_FIELDS_RANGE] = "\\b(?:first|top|leading)\\s+" NUM "\\s+(?:columns|fields|cols)\\b",
    [S_CONVERT_CHARS] = "\\b(?:convert|change|turn|translate)\\s+(?:all\\s+)?(?:the\\s+)?([a-z]+)\\s+(?:to|into|in)\\s+"
                        "([a-z]+)\\b",
    [S_LINE_ORD] = "\\b(?:the\\s+)?" ORD "\\s+line\\b",
    /* lines dropped from either end: "skip the first 3 lines", "remove the last line",
     * "everything after the first 2 lines", "all but the last line" (group 1: a verb,
     * either end; 2: a connective, whose direction must agree with 3; 4: how many; 5 or 6:
     * what is dropped) */
    [S_DROP_LINES] = "\\b(?:(skip(?:ping)?|remove|delete|drop|strip|omit|exclude|excluding|ignore|ignoring|without|"
                     "erase|chop(?:\\s+off)?|cut\\s+off)(?:\\s+the\\s+(?:header|first\\s+line)\\s+and)?|"
                     "(?:everything|all(?:\\s+(?:the\\s+)?lines)?|(?:the\\s+)?lines|the\\s+rest)\\s+"
                     "(after|following|past|below|before|above|preceding|except(?:\\s+for)?|but|other\\s+than|"
                     "apart\\s+from))\\s+(?:the\\s+)?(?:very\\s+)?"
                     "(first|top|leading|opening|last|final|bottom|trailing|closing)\\s+"
                     "(?:" NUM "\\b(?:\\s+" LINE_NOUN "|(?!\\s*[A-Za-z]))|" LINE_NOUN ")",
    /* "delete lines 3 to 5", "remove line 7", "delete the 2nd line": sed 'A,Bd' */
    [S_DROP_RANGE] = "\\b(?:delete|remove|drop|skip|omit|exclude|erase|without)\\s+(?:the\\s+)?"
                     "(?:lines?\\s+(?:between\\s+|from\\s+|number\\s+|#)?(\\d+)"
                     "(?:\\s*(?:to|-|through|thru|until|and)\\s*(\\d+))?|" ORD "\\s+line)\\b",
    /* a search for lines with trailing blanks, not their removal (F_TRAILING_WS) */
    [S_WS_LINES] = "\\blines?\\s+(?:that\\s+|which\\s+)?(?:with|having|ha(?:ve|s)|contain(?:ing|s)?|"
                   "end(?:ing|s)?\\s+(?:in|with))\\s+(?:trailing\\s+)?(?:white\\s*space|spaces|blanks)\\b|"
                   "\\b(?:find|show|list|count|detect|locate|highlight|search\\s+for|look\\s+for|check\\s+for)\\s+"
                   "(?:all\\s+|the\\s+|any\\s+)?trailing\\s+(?:white\\s*space|spaces|blanks)\\b",
    /* "join the lines with commas", "put all lines on one line": paste -s -d X (group 1:
     * the separator's name, a space when none is named) */
    [S_JOIN] = "\\b(?:join|merge|combine|concatenate|put)\\s+(?:all\\s+)?(?:of\\s+)?(?:the\\s+)?lines\\b"
               "(?:\\s+(?:together|into\\s+(?:a\\s+single|one)(?:\\s+line)?|"
               "on(?:to)?\\s+(?:a\\s+single|one)\\s+line))?"
               /* the separator may follow a file named ("join lines in a.txt with commas"),
                * looked at ahead so that the file stays an operand */
               "(?=(?:(?:\\s+(?:in|of|from)\\s+[\\w./-]+)?\\s*,?\\s*"
               "(?:with|using|by|separated\\s+by|delimited\\s+by)\\s+(?:an?\\s+)?('[^']+'|\"[^\"]+\"|\\w+))?)",
    /* "every third line": awk 'NR % 3 == 0' (every other / second line: F_EVERY_OTHER) */
    [S_EVERY_NTH] = "\\bevery\\s+(third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\\d+(?:st|nd|rd|th))\\s+"
                    "(?:line|row|entry|record)\\b",
    /* "lines that are exactly 'foo'": grep -x */
    [S_TERM_EXACT] = "\\b(?:exactly\\s+(?:equal\\s+to\\s+|match(?:es|ing)?\\s+)?|match(?:es|ing)?\\s+exactly\\s+)"
                     WORDISH TERM,
    /* "wrap lines at 40 characters": fold -s -w N (group 1: the width, 80 when absent) */
    [S_WRAP] = "\\b(?:wrap|fold)(?:s|ped|ping)?\\s+(?:the\\s+|all\\s+|long\\s+|every\\s+|each\\s+)*"
               "(?:(?:lines?|text|input|output|paragraphs?)\\s*)?"
               "(?:(?:at|to|after|on|with\\s+a\\s+width\\s+of)\\s+(?:a\\s+width\\s+of\\s+)?" NUM
               "(?:\\s+(?:characters|chars|columns|cols))?)?",
    /* grep's context: "2 lines of context around X", "3 lines before X", "the line after
     * each match of X" (group 1: how many; 2: "line" or "lines"; 3: "of context"; 4 and 5: which
     * side; 6: a count of context lines alone; 7: the search word right after, if any) */
    [S_CONTEXT] = "(?:\\b(?:the\\s+)?(?:" NUM "\\s+)?(lines?)\\s+(of\\s+context\\s+)?"
                  "(before|after|around|above|below|following|preceding|surrounding)"
                  "(?:\\s+and\\s+(after|before|below|above|following|preceding))?|"
                  "\\b" NUM "\\s+lines?\\s+of\\s+(?:surrounding\\s+)?context(?:\\s+around)?)\\b"
                  "(?:\\s+(?:(?:each|every|any|all)\\s+)?(?:the\\s+)?"
                  "(?:(?:match(?:es)?|occurrences?|mentions?|lines?|hits?)\\s+(?:of|for|containing|matching|with)\\s+)?"
                  WORDISH TERM ")?",
    /* "swap the first two columns", "swap columns 1 and 3": awk (groups 1-2: column numbers,
     * 3-4: ordinals; none: the first two) */
    [S_SWAP] = "\\b(?:swap|switch|exchange)\\s+(?:the\\s+)?(?:(?:first\\s+two|two\\s+first)\\s+(?:words|columns|fields|cols)|"
               "(?:columns|fields|cols)\\s+(\\d+)\\s+and\\s+(\\d+)|" ORD "\\s+and\\s+(?:the\\s+)?" ORD
               "\\s+(?:words|columns|fields|cols))\\b",
    /* "capitalize the first letter of each line / word", "title case": sed \U / \u (group 1:
     * line or word) */
    [S_CAPITALIZE] = "\\bcapitali[sz]e\\s+(?:the\\s+)?(?:first\\s+(?:letter|character|char)s?\\s+(?:of|in|on)\\s+)?"
                     "(?:each|every|all(?:\\s+the)?|the)\\s+(lines?|words?|sentences?)\\b|\\b(title)[- ]?case\\b",
    /* "everything after 'START'", "the lines before END": awk from (or up to) the first match
     * (group 1: which side, 2: the word; "after line 10" is S_AFTER_LINE) */
    [S_AFTER_MATCH] = "\\b(?:everything|all(?:\\s+(?:the\\s+)?lines)?|(?:the\\s+)?lines|the\\s+rest)\\s+"
                      "(after|following|below|from|starting\\s+(?:at|from)|before|above|preceding|up\\s+to|until)\\s+"
                      "(?:the\\s+)?(?:first\\s+)?(?:(?:line|match|occurrence)\\s+(?:containing|with|matching|of|for)\\s+)?"
                      WORDISH TERM,
    /* "number the lines": cat -n; "number the non-empty lines": nl (group 1) */
    [S_NUMBER_LINES] = "\\b(?:number|enumerate)\\s+(?:the\\s+|all\\s+(?:the\\s+)?|each\\s+|every\\s+)?"
                       "(?:(non-?(?:empty|blank))\\s+)?(?:lines?|rows?)\\b",
    [S_DELETE_CLASS] = "\\b(?:delete|remove|strip|drop)\\s+(?:all\\s+)?(?:the\\s+)?(digits|numbers|punctuation|"
                       "spaces|whitespace|tabs|commas|quotes)\\b",
    [S_FIELDS_LIST] = "\\b(?:columns|fields|cols)\\s+(\\d+)\\s*(?:and|,|&)\\s*(\\d+)\\b",
    [S_TERM_EMPTY] = "\\b(?:empty|blank)\\s+(lines?)\\b|"
                     "\\b(lines?)\\s+(?:that\\s+|which\\s+)?(?:are|is)\\s+(?:empty|blank)\\b",
    [S_OR_TERM] = "\\G['\"`]?\\s*,?\\s+or\\s+" TERM,
    [S_SIZE] = "\\b(larger|bigger|greater|more|over|smaller|less|under)\\s+(?:than\\s+)?(\\d+)\\s*"
               "(k|kb|kib|kilobytes?|m|mb|mib|megs?|megabytes?|g|gb|gib|gigs?|gigabytes?|bytes?)?\\b(?!/)",
    /* group 1: "not modified ..." / "unmodified ...": older than that, not newer */
    [S_MTIME] = "\\b(not\\s+(?:been\\s+)?|un)?(?:modified|changed|edited|updated|touched)\\s+(?:in\\s+)?(?:the\\s+)?"
                "(?:last|past|within)\\s+(?:the\\s+last\\s+)?" NUM "?\\s*(minutes?|hours?|days?|weeks?)\\b",
    /* "modified more than 3 days ago" (group 1: the comparison, none for "3 days ago") */
    [S_AGO] = "\\b(?:modified|changed|edited|updated|touched|written)\\s+(?:(more|over|less|under|within|fewer|"
              "at\\s+least|at\\s+most)\\s+(?:than\\s+)?)?" NUM "\\s*(minutes?|hours?|days?|weeks?)\\s+ago\\b",
    [S_AGE] = "\\b(older|newer)\\s+than\\s+" NUM "\\s*(minutes?|hours?|days?|weeks?)\\b",
    /* "lines 10 to 20", "lines between line 2 and line 4", "from line 2 to line 4" */
    [S_LINE_RANGE] = "(?|\\blines?\\s+(?:between\\s+|from\\s+)?(?:lines?\\s+)?(\\d+)|\\b(?:from|between)\\s+lines?\\s+(\\d+))"
                     "\\s*(?:to|-|through|thru|until|and)\\s*(?:lines?\\s+)?(\\d+)\\b",
    [S_LINE_ONE] = "\\bline\\s+(?:number\\s+|#)?(\\d+)\\b",
    [S_LONGER] = "\\blines?\\s+(?:that\\s+are\\s+|which\\s+are\\s+)?(longer|shorter|more|fewer|less)\\s+than\\s+"
                 "(\\d+)(?:\\s+(?:characters?|chars?|bytes?|columns?))?",
    /* "the error lines": a log level in lower case names lines of any case (logs
     * write ERROR); "ERROR lines" in capitals stays exact (S_TERM_CAPS_NOUN) */
    [S_TERM_LEVEL] = "(?-i)\\b(errors?|warnings?|warn|fatal|critical|debug|exceptions?)\\s+"
                     "(?:lines?|messages?|entries)\\b",
    [S_TERM_IP] = "(?:^|\\s)((?:\\d{1,3}\\.){3}\\d{1,3})" TOKEN_END,
    /* "requests that were 404" (web logs only: elsewhere "with 100" is no status) */
    [S_TERM_STATUS_LOG] = "\\b(?:were|was|got|gave|giving|with|returning)\\s+(?:an?\\s+)?(?:http\\s+)?"
                          "(?:status\\s+)?([1-5]\\d\\d)\\b",
    /* web logs: requests by their status, compared as a number in its field (grep 404 would
     * also find the bytes, paths and times that contain 404). Group 1 or 2: a code or class
     * ("404", "5xx"); 3: a second class ("4xx and 5xx"); 4: "client" / "server" errors; 5:
     * any error */
    [S_LOG_STATUS_IS] = "\\b(?:returned|returning|return|with\\s+(?:an?\\s+)?(?:http\\s+)?status(?:\\s+code)?|"
                        "status(?:\\s+code)?(?:\\s+(?:is|of|was))?|code|were|was|got|gave|giving|with|that\\s+(?:are|were)|"
                        "only)\\s+(?:an?\\s+)?(?:http\\s+)?(?:status\\s+)?([1-5]\\d\\d|[1-5]xx)\\b|"
                        "\\b([1-5]\\d\\d|[1-5]xx)s?(?:\\s*(?:and|or|,|&)\\s*([1-5]xx)s?)?\\b(?=\\s+(?:errors?|requests?|"
                        "responses?|status(?:es)?|codes?|hits|pages|paths|urls|lines|entries)\\b|\\s*$)|"
                        "\\b(client|server)(?:[- ]side)?\\s+errors?\\b|"
                        /* not the word itself ("lines containing error") */
                        "(?<!containing\\s)(?<!contain\\s)(?<!contains\\s)(?<!matching\\s)(?<!mentioning\\s)(?<!word\\s)"
                        "\\b(errors|error\\s+(?:responses|requests|codes|statuses)|failed\\s+requests|failures|"
                        "unsuccessful\\s+requests)\\b",
    /* web logs: requests for a path ("requests to /api", "hits on /login"): its prefix */
    [S_LOG_PATH_IS] = "\\b(?:requests?|hits|calls|visits|entries|lines|accesses)\\s+(?:to|for|on|of|under|at)\\s+"
                      "(?:the\\s+)?(?:path\\s+|page\\s+|url\\s+|endpoint\\s+)?(/[^\\s,;*]*)",
    /* a time window relative to now ("in the last hour", "today"): log lines carry their own
     * times, which only a model could compare (files have find -mmin) */
    [S_RECENT] = "\\b(?:in|from|during|over|within|for)\\s+the\\s+(?:last|past|previous)\\s+(?:" NUM "\\s+)?"
                 "(?:minutes?|hours?|days?|weeks?|months?)\\b|\\b(?:today|yesterday|this\\s+(?:morning|week|month))\\b",
    /* files "modified today" / "yesterday": find -daystart -mtime 0 / 1 (group 1) */
    [S_ON_DAY] = "\\b(?:modified|changed|edited|updated|touched|created|written|saved)\\s+(today|yesterday)\\b",
    /* "files with 'config' in their name": find -name '*config*' (group 1 or 2) */
    [S_NAME_HAS] = "\\bfiles?\\s+(?:with|having|containing|that\\s+(?:have|contain))\\s+(?:the\\s+(?:word|string|text)\\s+)?"
                   TERM "\\s+in\\s+(?:their|the|its)\\s+(?:file\\s*)?names?\\b|"
                   "\\bfiles?\\s+whose\\s+(?:file\\s*)?names?\\s+(?:contains?|includes?|ha(?:s|ve))\\s+"
                   "(?:the\\s+(?:word|string|text)\\s+)?" TERM,
    /* "every Makefile", "all Dockerfiles": files known by a name without an extension (group
     * 1 or 2); a single one named ("show the Makefile") is a file operand */
    [S_KNOWN_FILES] = "(?-i)\\b(?i:every|each|all(?:\\s+the)?|any|find|locate|list|where\\s+are)\\s+(?:(?i:the)\\s+)?"
                      "(" KNOWN_FILE_NAMES ")s?\\b|\\b(" KNOWN_FILE_NAMES ")s\\b",
    [S_TERM_STATUS] = "\\b(?:returned|returning|return|with\\s+status|status(?:\\s+code)?|code)\\s+(\\d+)\\b",
    /* "shuffle the lines", "in random order": shuf */
    [S_SHUFFLE] = NOT_SEARCHED "\\b(?:shuffl(?:e[sd]?|ing)|randomi[sz](?:e[sd]?|ing)(?:\\s+the\\s+order(?:\\s+of)?)?|"
                  "(?:in\\s+(?:a\\s+)?)?random\\s+order)\\b",
    /* "3 random lines", "a random line", "pick 5 lines at random", "a random sample of 10 lines":
     * shuf -n N (groups 1-3: N; none: one line) */
    [S_RANDOM_N] = NOT_SEARCHED "\\b(?:(?:" NUM "|an?)\\s+random(?:ly\\s+(?:chosen|picked|selected))?\\s+|"
                   "(?:pick|choose|select|sample|show|print|get|take|give\\s+me)\\s+" NUM "\\s+"
                   "(?=(?:(?:lines?|rows?|entries|records?)\\s+)?(?:at\\s+random|randomly)\\b)|"
                   "(?:an?\\s+)?random\\s+sample\\s+of\\s+" NUM "\\s+)"
                   "(?:lines?|rows?|entries|entry|records?)?(?:\\s+(?:at\\s+random|randomly))?",
    /* "the sha256 checksum of every file", "md5sums", "hash of each file" (group 1: the algorithm) */
    [S_CHECKSUM] = NOT_SEARCHED "(?<![.*/-])\\b(?:(md5|sha-?(?:1|224|256|384|512)|crc-?32|blake2b?|b2)(?:sums?)?\\b"
                   "(?:\\s+(?:check)?sums?\\b|\\s+hash(?:es)?\\b|\\s+digests?\\b)?|checksums?\\b|"
                   "(?:content\\s+)?(?:hash(?:es)?|digests?)\\s+(?=of\\b|for\\b))(?!\\s+(?:column|field|key)s?\\b)",
    /* "base64 encode", "decode the base64 input", "convert from base64" (groups 1-3: the
     * verb before, "from", the verb after; a decoding verb or "from" decodes) */
    [S_BASE64] = NOT_SEARCHED "(?:\\b((?:de|en)cod(?:e[sd]?|ing)|convert(?:ed)?)\\s+(?:(?:the|this|it|its|input|text|"
                 "data|file|string|strings|contents?|lines?|each|every|as|to|into|in|of|with|using)\\s+){0,4})?(\\bfrom\\s+)?"
                 "\\bbase[\\s-]?64\\b(?:[\\s-]+((?:de|en)cod(?:e[sd]?|ing))\\b)?",
    /* "a hex dump of data.bin", "show the bytes in hex", "octal dump" (group 1: octal) */
    [S_DUMP] = NOT_SEARCHED "\\b(?:hex(?:adecimal)?[\\s-]*dump|hexdump|xxd|(octal)[\\s-]*dump|(?:bytes?|contents?|it|data)\\s+"
               "(?:in|as)\\s+hex(?:adecimal)?|hex(?:adecimal)?\\s+(?:bytes|values|codes)|byte\\s+values)\\b",
    /* "print the numbers from 1 to 10", "the even numbers from 2 to 20", "numbers 0 to 100 in
     * steps of 5", "count down from 10 to 1": seq (1: even/odd, 2: "count", 3: first, 4: last, 5: step) */
    [S_SEQ] = "\\b(?:(?:the\\s+)?(?:(even|odd)\\s+)?(?:whole\\s+)?(?:numbers|integers)\\s+(?:from\\s+)?|"
              "(count)(?:ing)?\\s+(?:down\\s+|up\\s+)?from\\s+|"
              "(?:a\\s+)?sequence\\s+(?:of\\s+(?:numbers|integers)\\s+)?from\\s+)"
              "(-?\\d+|one|two|three|four|five|six|seven|eight|nine|ten|zero)\\s+"
              "(?:to|through|thru|until|up\\s+to)\\s+(-?\\d+|one|two|three|four|five|six|seven|eight|nine|ten|"
              "eleven|twelve|fifteen|twenty|thirty|fifty|hundred)\\b"
              "(?:\\s*,?\\s*(?:in\\s+steps?\\s+of|by|with\\s+(?:a\\s+)?step\\s+(?:of\\s+)?|stepping\\s+by)\\s+(\\d+)\\b)?",
    /* "join a.txt and b.txt": join (the files are read as operands) */
    [S_JOIN_FILES] = "\\bjoin\\s+(?:the\\s+)?(?:two\\s+)?(?:files?\\s+)?(?!(?:the\\s+)?(?:lines?|rows?|words?|"
                     "columns?|fields?)\\b)[\\w./-]+\\s+(?:and|with)\\s+[\\w./-]+\\.\\w+",
    /* "on the second field", "by column 3", "on the id column" (1: ordinal, 2: number, 3: a name) */
    [S_JOIN_KEY] = "\\b(?:on|by|using)\\s+(?:the\\s+)?(?:" ORD "\\s+(?:field|column|key)|(?:field|column|key)\\s+"
                   "(\\d+)|(\\w+)\\s+(?:field|column|key))\\b",
};

/* Words that follow "containing"/"for"/... without being what to search for. */
static const char *const term_stopwords[] = {
    "each", "every", "all", "the", "a", "an", "any", "lines", "line", "files", "file", "words",
    "under", "below", "above", "inside", "within", "over", "their", "its", "his", "her",
    "word", "them", "it", "this", "that", "these", "those", "duplicates", "duplicate", "blank",
    "empty", "numbers", "number", "case", "input", "output", "stdin", "text", "data", "column",
    "field", "me", "us", "in", "of", "and", "or", "to", "from", "with", "only", "unique",
    "distinct", "different", "entries", "rows", "count", "counts", "occurrences", "results",
    "hidden", "details", "first", "last", "header", "heading", "current", "working", "present", "same", "whole", "entire", "how", "what", "which", "more", "less", "some", "one", "two", "three", "ten",
};

/* Words after "in" that are not directories ("sort in reverse order"). */
static const char *const not_dirs[] = {
    "reverse", "order", "alphabetical", "numeric", "numerical", "case", "lowercase", "uppercase",
    "parallel", "total", "it", "them", "this", "that", "the", "a", "an", "each", "every", "all",
    "sorted", "chronological", "random",
    "my", "our", "your", "there", "here", "json", "csv", "tsv", "memory", "bytes", "lines", "words",
    "files", "columns", "descending", "ascending", "seconds", "minutes", "hours", "days", "one",
    "full", "detail", "details", "bulk", "order.", "common", "both", "stdin", "input", "output",
    "place", "use", "front", "between", "kb", "mb", "gb", "k", "m", "g", "current", "which",
};

/* w is one of the n words of list (any case). */
static bool word_in(const char *const *list, size_t n, const char *w) {
    for (size_t i = 0; w && i < n; i++)
        if (strcasecmp(w, list[i]) == 0) return true;
    return false;
}
#define WORD_IN(list, w) word_in((list), sizeof(list) / sizeof((list)[0]), (w))

static bool is_not_dir(const char *w) {
    return WORD_IN(not_dirs, w);
}

#define RE_EMAIL "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}"
#define RE_IPV4 "([0-9]{1,3}\\.){3}[0-9]{1,3}"
#define RE_DATE "[0-9]{4}-[0-9]{2}-[0-9]{2}"

/* Words that stand for a kind of text rather than literal text ("lines with a
 * number", "lines containing an email address"): the extended regex grep uses instead. */
static const struct {
    const char *word, *regex;
} term_classes[] = {
    {"number", "[0-9]"},  {"numbers", "[0-9]"},  {"digit", "[0-9]"},    {"digits", "[0-9]"},
    {"url", "https?://"}, {"urls", "https?://"}, {"link", "https?://"}, {"links", "https?://"},
    {"email", RE_EMAIL},  {"e-mail", RE_EMAIL},  {"emails", RE_EMAIL},  {"date", RE_DATE},
    {"dates", RE_DATE},   {"tab", "\t"},         {"tabs", "\t"},
};

/* Upper-case words that name formats, not things to search for. */
static const char *const caps_not_terms[] = {"CSV", "TSV", "JSON", "XML", "HTML", "YAML", "URL", "URI",
                                             "IPS", "API", "UTF", "ASCII", "PDF", "SQL", "IDS", "TODOS"};

static const struct {
    const char *word;
    const char *glob;
} ext_words[] = {
    {"c", "*.c"},       {"c++", "*.cpp"},   {"cpp", "*.cpp"},  {"python", "*.py"},
    {"rust", "*.rs"},   {"go", "*.go"},     {"golang", "*.go"}, {"markdown", "*.md"},
    {"json", "*.json"}, {"yaml", "*.yaml"}, {"yml", "*.yml"},  {"shell", "*.sh"},
    {"bash", "*.sh"},   {"javascript", "*.js"}, {"js", "*.js"}, {"typescript", "*.ts"},
    {"ts", "*.ts"},     {"java", "*.java"}, {"ruby", "*.rb"},  {"header", "*.h"},
    {"text", "*.txt"},  {"txt", "*.txt"},   {"log", "*.log"},  {"csv", "*.csv"},
    {"html", "*.html"}, {"css", "*.css"},   {"toml", "*.toml"}, {"xml", "*.xml"},
    {"php", "*.php"},   {"perl", "*.pl"},   {"sql", "*.sql"},
};

static const struct {
    const char *word;
    long value;
} number_words[] = {
    {"one", 1},     {"two", 2},     {"three", 3},   {"four", 4},   {"five", 5},
    {"six", 6},     {"seven", 7},   {"eight", 8},   {"nine", 9},   {"ten", 10},
    {"eleven", 11}, {"twelve", 12}, {"fifteen", 15}, {"twenty", 20}, {"thirty", 30},
    {"fifty", 50},  {"hundred", 100}, {"first", 1}, {"second", 2}, {"third", 3},
    {"fourth", 4},  {"fifth", 5},   {"sixth", 6},   {"seventh", 7}, {"eighth", 8},
    {"ninth", 9},   {"tenth", 10},
};

/* Things people ask to extract by name: an extraction verb, the noun, and the
 * extended regex grep -o uses for it. Log fields win over these in web logs. */
#define EXTRACT_VERB "\\b(?:extract|find|list|show|get|print|pull\\s+out|grab|collect|count|display)" \
                     "(?:\\s+(?:all|the|every|each|unique|distinct|different|of|out|me|only))*\\s+"
static const struct {
    const char *phrase;
    const char *regex;
    bool log_field;   /* also a named field of web logs: skip when the input is one */
    bool letter_case; /* "the upper-case letters" names a kind of letter, not a conversion */
} named_patterns[] = {
    {EXTRACT_VERB "e-?mail(?:\\s+address(?:es)?|s)?\\b", RE_EMAIL, false, false},
    {EXTRACT_VERB "ip(?:v4)?(?:\\s+address(?:es)?|s)?\\b", RE_IPV4, true, false},
    {EXTRACT_VERB "(?:urls?|links?|web\\s+addresses)\\b", "https?://[^[:space:]\"'<>]+", true, false},
    {EXTRACT_VERB "(?:numbers|integers)\\b", "[0-9]+", false, false},
    {EXTRACT_VERB "dates?\\b", RE_DATE, false, false},
    /* single characters: "count the vowels" counts each one */
    {EXTRACT_VERB "digits\\b", "[0-9]", false, false},
    {EXTRACT_VERB "vowels\\b", "[aeiouAEIOU]", false, false},
    {EXTRACT_VERB "consonants\\b", "[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]", false, false},
    {EXTRACT_VERB "(?:upper[- ]?case|capital)\\s+letters\\b", "[A-Z]", false, true},
    {EXTRACT_VERB "lower[- ]?case\\s+letters\\b", "[a-z]", false, true},
    {EXTRACT_VERB "letters\\b", "[A-Za-z]", false, false},
    {EXTRACT_VERB "punctuation(?:\\s+marks|\\s+characters)?\\b", "[[:punct:]]", false, false},
};
#define N_NAMED_PATTERNS (sizeof named_patterns / sizeof named_patterns[0])

/* Characters named in words, for "replace tabs with commas" (tr, not sed). */
static const struct {
    const char *word;
    const char *chars; /* tr notation */
} char_names[] = {
    {"tab", "\\t"},       {"tabs", "\\t"},       {"space", " "},        {"spaces", " "},
    {"comma", ","},       {"commas", ","},       {"semicolon", ";"},    {"semicolons", ";"},
    {"colon", ":"},       {"colons", ":"},       {"newline", "\\n"},   {"newlines", "\\n"},
    {"pipe", "|"},        {"pipes", "|"},        {"dot", "."},          {"dots", "."},
    {"period", "."},      {"periods", "."},      {"underscore", "_"},   {"underscores", "_"},
    {"dash", "-"},        {"dashes", "-"},       {"hyphen", "-"},       {"hyphens", "-"},
    {"slash", "/"},       {"slashes", "/"},      {"hash", "#"},         {"hashes", "#"},
};

/* Kinds of characters named in "replace all digits with X": sed's basic regex for them. */
static const struct {
    const char *word, *bre;
} replace_classes[] = {
    {"digit", "[0-9]"},         {"digits", "[0-9]"},         {"number", "[0-9][0-9]*"},
    {"numbers", "[0-9][0-9]*"}, {"letter", "[A-Za-z]"},      {"letters", "[A-Za-z]"},
    {"vowel", "[aeiouAEIOU]"},  {"vowels", "[aeiouAEIOU]"},  {"whitespace", "[[:space:]][[:space:]]*"},
    {"punctuation", "[[:punct:]]"},
};

static const char *char_name(const char *w) {
    for (size_t i = 0; w && i < sizeof char_names / sizeof char_names[0]; i++)
        if (strcasecmp(w, char_names[i].word) == 0) return char_names[i].chars;
    return NULL;
}

/* Tools that read file operands (so files attach to them rather than to a `cat`). */
static const char *const file_readers[] = {"grep", "head", "tail", "wc", "cat", "sort", "cut", "awk",
                                           "sed", "jq", "paste", "nl", "fold", "tac", "rev", "shuf",
                                           "md5sum", "sha256sum", "base64", "od", "ls"};

/* An aggregate per group ("the average age per city"): the words that ask for it (their
 * first three letters are enough: "maximum", "averages"), what jq applies to a group's
 * values, and the awk program. Every awk format reads its printf arguments from the same
 * list (group column, value column, group, group, value), as far as it needs. */
typedef struct {
    const char *words[3];
    const char *jq, *awk;
} group_agg;
static const group_agg group_aggs[] = {
    {{"average", "mean"}, "add / length", "{s[$%ld] += $%ld; n[$%ld]++} END {for (k in s) print k, s[k] / n[k]}"},
    {{"sum", "total"}, "add", "{s[$%ld] += $%ld} END {for (k in s) print k, s[k]}"},
    {{"max", "highest", "largest"}, "max",
     "!($%ld in m) || $%ld > m[$%ld] {m[$%ld] = $%ld} END {for (k in m) print k, m[k]}"},
    {{"min", "lowest", "smallest"}, "min",
     "!($%ld in m) || $%ld < m[$%ld] {m[$%ld] = $%ld} END {for (k in m) print k, m[k]}"},
};

#define MAX_STEPS 16
#define MAX_COL_NAMES 32
#define MAX_ARGS 12
#define MAX_ITEMS 8

/* ---------------------------------------------------------------- backend */

typedef struct rules_backend {
    agx_backend base;
    pcre2_code *flags[F_NFLAGS];
    pcre2_code *slots[S_NSLOTS];
    pcre2_code *log_line; /* common/combined log format, for the input summary */
    pcre2_code *named[N_NAMED_PATTERNS];
} rules_backend;

typedef struct {
    size_t start, end;
} span;

typedef struct {
    const char *tool;
    char *args[MAX_ARGS];
    size_t n_args;
} step;

typedef struct {
    const rules_backend *rb;
    const char *text;
    size_t len;
    pcre2_match_data *md;
    int rc; /* captures set by the last successful match (pcre2_match's result) */
    span quoted[MAX_ITEMS];
    size_t n_quoted;
    span used[MAX_ITEMS * 2];
    size_t n_used;
    bool flag[F_NFLAGS];
    size_t flag_at[F_NFLAGS];         /* where each flag's first match starts (see flag_says) */
    char *unsupported;
    char *term, *term2;               /* term2: "both X and Y" (a second grep) */
    bool term2_invert;                /* "X but not Y": the second grep keeps what lacks Y */
    bool invert, occurrences_of_term;
    char *files[MAX_ITEMS];
    size_t n_files;
    char *dir, *glob, *glob2;
    bool named_exact;
    bool named_dir;                   /* "directories named node_modules" */
    char *json_sort_key;              /* "sort by age" of JSON objects: jq sort_by(.age) */
    long json_top;                    /* "the 2 oldest items": sort_by | reverse | .[:2] */
    long json_pick[2];                /* "name and age of each item": jq map({name, age}) (1-based keys) */
    const group_agg *agg;             /* "the average age per city": how ... */
    long agg_col, agg_by;             /* ... of this column for each value of that one */
    long drop_col;                    /* "drop the city column": cut --complement, jq del */
    char *row_cond;                   /* "rows where name starts with b", "requests that returned 404": awk */
    bool find_daystart;               /* "modified today": find -daystart -mtime 0 */
    long json_first, json_last;       /* "the first 3 items": jq '.[:3]'; "the last 2": '.[-2:]' */
    bool json_one;                    /* "the first item": jq '.[0]' (an item, not a list of one) */
    char *find_user;                  /* "owned by root": find -user */
    long cmp_field;                   /* "where the third column is greater than 100": awk '$3 > 100' */
    const char *cmp_op;
    char *cmp_value;
    long first_n, last_n, field, sort_key;
    bool field_last;
    bool field_quoted;                /* a web log's quoted field (agent, referrer): awk -F'"' */
    int log_time_len;                 /* requests per day/hour/minute: substr($4, 2, len) */
    char *replace_from, *replace_to, *json_key;
    const char *named_regex;          /* from named_patterns: grep -oE */
    long fields[2];                   /* "columns 1 and 3" */
    long fields_upto;                 /* "first 3 columns" */
    long chars_upto;                  /* "first 5 characters": cut -c1-N */
    long head_bytes;                  /* "the first 64 bytes": head -c 64 */
    long from_line;                   /* "everything after line 10": tail -n +11 */
    long drop_last;                   /* "remove the last 2 lines": head -n -2 */
    bool drop_items;                  /* ... of a JSON array's items: jq '.[N:]', '.[:-N]' */
    char *json_select;                /* "items where age is greater than 4": select(.age > 4) */
    const char *json_extreme;         /* "the item with the highest age": max_by / min_by */
    bool line_delete;                 /* line_from..line_to are deleted: sed 'A,Bd' */
    char *join_with;                  /* "join the lines with commas": paste -s -d, */
    char cannot[160];                 /* why a half-understood instruction is declined ("" when none) */
    char *glob_not;                   /* "files that are not python files": find -not -name '*.py' */
    char *exclude_dir;                /* "excluding node_modules": grep --exclude-dir, find -not -path */
    bool exclude_used;                /* some step leaves exclude_dir out (else the plan is declined) */
    char *find_newer;                 /* "newer than main.c": find -newer (find_older: -not -newer) */
    bool find_older;
    long from_end;                    /* "the second to last line": tail -n 2 | head -n 1 */
    const char *nf_op;                /* "lines with more than 3 words": awk 'NF > 3' */
    long nf_value;
    char *between[2];                 /* "lines between START and END": awk '/START/,/END/' */
    char *find_size, *find_time_flag, *find_time; /* find -size / -mtime|-mmin predicates */
    long every_nth;                   /* "every third line": awk 'NR % 3 == 0' */
    char *after_word;                 /* "everything after X": awk from the first line with X */
    char after_side;                  /* 'a' after it, 'f' from it on, 'b' before it */
    bool whole_line;                  /* "lines that are exactly X": grep -x */
    long context_before, context_after; /* grep -B / -A / -C */
    bool context_only;                /* "the line after each match": that line alone (awk) */
    long swap[2];                     /* "swap the first two columns": awk, these two swapped */
    char capitalize;                  /* 'l': each line's first letter, 'w': each word's */
    long last_chars;                  /* "the last 3 characters": awk substr */
    bool number_nonempty;             /* "number the non-empty lines": nl (every line: F_LINE_NUMBERS) */
    bool dir_by_in_word;              /* the directory came from a bare "in WORD" (weakest evidence) */
    long wrap_width;                  /* fold -s -w N */
    bool shuffle;                     /* "shuffle the lines": shuf */
    long random_n;                    /* "3 random lines": shuf -n 3 */
    const char *checksum_tool;        /* "the sha256 of each file": sha256sum (md5sum) */
    char base64;                      /* 'e': base64, 'd': base64 -d */
    char dump;                        /* 'x': od as a hex dump, 'o': in octal */
    long seq[3];                      /* "the numbers from 1 to 10": seq FIRST STEP LAST */
    bool seq_set;
    bool join_files;                  /* "join a.txt and b.txt on the second field": join -j 2 */
    long join_key;
    const char *replace_class;        /* "replace all digits with X": the class's sed regex */
    long line_from, line_to;          /* sed -n 'A,Bp' */
    long longer_than, shorter_than;   /* awk 'length($0) > N' */
    bool term_regex;                  /* the term is an extended regex (grep -E) */
    const char *delete_set;           /* tr -d SET */
    bool piped, log_input, json_input, json_array;
    /* piped CSV/TSV whose first line is a header ("name,age,city", csv_delim set) or
     * JSON objects ("name": ...): columns / keys can be named */
    char csv_delim;
    size_t n_col_names;
    char *col_names[MAX_COL_NAMES];
    bool col_numeric[MAX_COL_NAMES]; /* the first data row holds a number there */
    step steps[MAX_STEPS];
    size_t n_steps;
    bool oom;
} analysis;

static bool in_spans(const span *spans, size_t n, size_t pos) {
    for (size_t i = 0; i < n; i++)
        if (pos >= spans[i].start && pos < spans[i].end) return true;
    return false;
}

static void mark_used(analysis *a, size_t start, size_t end) {
    if (a->n_used < sizeof a->used / sizeof a->used[0]) a->used[a->n_used++] = (span){start, end};
}

/* First match of re at or after *from whose start is outside quoted text. On
 * success the ovector is in a->md. */
static bool match_from(analysis *a, const pcre2_code *re, size_t from) {
    while (from <= a->len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)a->text, a->len, from, 0, a->md, NULL);
        if (rc < 0) return false;
        a->rc = rc == 0 ? (int)pcre2_get_ovector_count(a->md) : rc;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
        if (!in_spans(a->quoted, a->n_quoted, ov[0]) && !in_spans(a->used, a->n_used, ov[0]))
            return true;
        from = ov[0] + 1;
    }
    return false;
}

/* The flag is set and its match begins with one of the words: which way a
 * two-sided signal points ("the shortest lines", "the even lines"), read off
 * the match instead of a second regex. */
static bool flag_says(const analysis *a, flag_id id, const char *const *words) {
    if (!a->flag[id]) return false;
    for (; *words; words++) {
        const size_t n = strlen(*words);
        if (!strncasecmp(a->text + a->flag_at[id], *words, n) && !isalnum((unsigned char)a->text[a->flag_at[id] + n]))
            return true;
    }
    return false;
}
static const char *const small_words[] = {"shortest", "smallest", "fewest", "least", "lowest", NULL};

/* The whole of the last match is taken: nothing else may read its words. */
static void mark_match_used(analysis *a) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
    mark_used(a, ov[0], ov[1]);
}

static bool group(analysis *a, int g, size_t *start, size_t *end) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
    if (g < 0 || g >= a->rc || ov[2 * g] == PCRE2_UNSET) return false;
    *start = ov[2 * g];
    *end = ov[2 * g + 1];
    return true;
}

/* The first of groups 1..last of the last match that took part (0 for none), and its span. */
static int first_group(analysis *a, int last, size_t *s, size_t *e) {
    for (int g = 1; g <= last; g++)
        if (group(a, g, s, e)) return g;
    return 0;
}

/* Duplicates a capture, removing surrounding quotes. */
static char *group_dup(analysis *a, int g, bool *was_quoted) {
    size_t s, e;
    if (!group(a, g, &s, &e)) return NULL;
    bool q = e - s >= 2 && strchr("'\"`", a->text[s]) && a->text[e - 1] == a->text[s];
    if (was_quoted) *was_quoted = q;
    char *out = q ? agx_strndup(a->text + s + 1, e - s - 2) : agx_strndup(a->text + s, e - s);
    if (!out) a->oom = true;
    return out;
}

static long number_value(const char *s) {
    if (isdigit((unsigned char)s[0])) {
        long v = strtol(s, NULL, 10);
        return v > 0 && v < 1000000000L ? v : -1;
    }
    for (size_t i = 0; i < sizeof number_words / sizeof number_words[0]; i++)
        if (strcasecmp(s, number_words[i].word) == 0) return number_words[i].value;
    return -1;
}

static long slot_number(analysis *a, slot_id id, int g) {
    if (!match_from(a, a->rb->slots[id], 0)) return -1;
    char *s = group_dup(a, g, NULL);
    long v = s ? number_value(s) : -1;
    free(s);
    return v;
}

/* ---------------------------------------------------------------- analysis */

static void find_quotes(analysis *a) {
    for (size_t i = 0; i < a->len && a->n_quoted < MAX_ITEMS; i++) {
        char q = a->text[i];
        if (q != '\'' && q != '"' && q != '`') continue;
        /* an apostrophe inside a word ("don't") is not a quote */
        if (q == '\'' && i > 0 && isalnum((unsigned char)a->text[i - 1])) continue;
        const char *end = memchr(a->text + i + 1, q, a->len - i - 1);
        if (!end) break;
        size_t e = (size_t)(end - a->text) + 1;
        a->quoted[a->n_quoted++] = (span){i, e};
        i = e - 1;
    }
}

static bool is_stopword(const char *w) {
    return WORD_IN(term_stopwords, w);
}

static void strip_trailing_punct(char *s) {
    size_t n = strlen(s);
    while (n > 1 && strchr(".,;:?!)", s[n - 1])) s[--n] = '\0'; /* a lone ";" stays */
}

static bool looks_like_file(const char *s);

/* Escapes extended-regex metacharacters so a word can sit in "A|B". */
static char *ere_escape(const char *w) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (const char *p = w; *p; p++) {
        if (strchr(".[]()*+?{}|^$\\", *p)) agx_strbuf_putc(&sb, '\\');
        agx_strbuf_putc(&sb, *p);
    }
    if (!sb.data) agx_strbuf_puts(&sb, "");
    return agx_strbuf_take(&sb);
}

/* "TODO or FIXME": a second term right after the first makes an alternation. */
/* Group g of the last match as a search word: trailing punctuation dropped
 * unless quoted; NULL when it is empty or an unquoted stop word. */
static char *term_group(analysis *a, int g) {
    bool quoted = false;
    char *t = group_dup(a, g, &quoted);
    if (t && !quoted) strip_trailing_punct(t);
    if (t && (!*t || (!quoted && is_stopword(t)))) {
        free(t);
        t = NULL;
    }
    return t;
}

static void extract_or_term(analysis *a, size_t term_end) {
    if (!match_from(a, a->rb->slots[S_OR_TERM], term_end)) return;
    char *second = term_group(a, 1);
    if (second) {
        char *x = ere_escape(a->term), *y = ere_escape(second);
        char *alt = x && y ? agx_sprintf("%s|%s", x, y) : NULL;
        if (alt) {
            free(a->term);
            a->term = alt;
            a->term_regex = true;
            size_t s = 0, e = 0;
            group(a, 1, &s, &e);
            mark_used(a, s, e);
        } else {
            a->oom = true;
        }
        free(x);
        free(y);
    }
    free(second);
}

/* The comparison a word names: ">" (greater, more, larger, longer, ...), "<"
 * (less, smaller, shorter, ...) or "==" (equal, is, of); NULL for any other word.
 * Shared by file sizes, line lengths and column values. */
static const char *comparison(const char *w) {
    static const struct {
        const char *word, *op;
    } words[] = {{"greater", ">"}, {"more", ">"},    {"larger", ">"},  {"bigger", ">"}, {"higher", ">"},
                 {"over", ">"},    {"above", ">"},   {"longer", ">"},  {"less", "<"},   {"smaller", "<"},
                 {"lower", "<"},   {"under", "<"},   {"below", "<"},   {"shorter", "<"}, {"fewer", "<"},
                 {"older", ">"},   {"younger", "<"}, {"equal", "=="},  {"equals", "=="}, {"is", "=="},
                 {"of", "=="}};
    for (size_t i = 0; w && i < sizeof words / sizeof words[0]; i++) {
        const size_t n = strlen(words[i].word);
        if (!strncasecmp(w, words[i].word, n) && !isalpha((unsigned char)w[n])) return words[i].op;
    }
    return NULL;
}

static bool is_greater(const char *w) {
    const char *op = comparison(w);
    return op && *op == '>';
}

/* A lower-case plural search word made singular in place ("errors" -> "error",
 * "messages" -> "message"): grep matches substrings, so the singular finds both.
 * Left alone where dropping the "s" would not give the singular: "-ss", "-us",
 * "-is", and "-es" after s/x/z/h/i ("aliases", "boxes", "matches", "entries"). */
static void singular(char *w) {
    size_t n = strlen(w);
    if (n < 5 || w[n - 1] != 's' || strchr("sui", w[n - 2])) return;
    if (w[n - 2] == 'e' && strchr("sxzhi", w[n - 3])) return;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)w[i])) return;
    w[n - 1] = '\0';
}

/* Four dot-separated groups of 1-3 digits ("10.0.0.7"). */
static bool is_ipv4(const char *w) {
    int groups = 0, digits = 0;
    for (; *w; w++) {
        if (isdigit((unsigned char)*w) && ++digits <= 3) continue;
        if (*w != '.' || digits == 0) return false;
        groups++;
        digits = 0;
    }
    return groups == 3 && digits > 0;
}

/* One of the alternatives of KNOWN_FILE_NAMES, exactly ("Makefile", not "makefiles"). */
static bool is_known_file_name(const char *w) {
    static const char names[] = KNOWN_FILE_NAMES;
    const size_t n = strlen(w);
    for (const char *p = names; n && (p = strstr(p, w)) != NULL; p++)
        if ((p == names || p[-1] == '|') && (p[n] == '|' || p[n] == '\0')) return true;
    return false;
}

/* "not" (or "n't") ends in the `back` characters before pos: "lines that do not start
 * with #", "requests that were not 200". */
static bool negated_before(const analysis *a, size_t pos, size_t back) {
    if (back > pos) back = pos;
    for (size_t k = pos - back; k + 4 <= pos; k++)
        if (!strncasecmp(a->text + k, "not ", 4) || !strncasecmp(a->text + k, "n't ", 4)) return true;
    return false;
}

static void extract_term(analysis *a) {
    for (size_t i = 0; !a->seq_set && i < N_NAMED_PATTERNS; i++) { /* a sequence's numbers are no search */
        if (named_patterns[i].log_field && a->log_input) continue;
        if (!match_from(a, a->rb->named[i], 0)) continue;
        a->named_regex = named_patterns[i].regex;
        if (named_patterns[i].letter_case) a->flag[F_UPPER] = a->flag[F_LOWER] = false;
        a->term = agx_strdup(named_patterns[i].regex);
        if (!a->term) a->oom = true;
        a->term_regex = true;
        mark_match_used(a);
        return;
    }
    for (int id = S_TERM_INVERT; id <= S_TERM_ANY_CAPS; id++) {
        if (id == S_TERM_ANY_CAPS && !a->flag[F_SEARCHY] && !a->flag[F_COUNT]) break;
        if (id == S_TERM_STATUS_LOG && !a->log_input) continue;
        size_t from = 0;
        while (match_from(a, a->rb->slots[id], from)) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
            size_t m_start = ov[0], m_end = ov[1];
            int g = a->rc - 1;
            size_t s = 0, e = 0;
            while (g > 0 && !group(a, g, &s, &e)) g--;
            bool quoted = false;
            char *t = group_dup(a, g, &quoted);
            if (!t) return;
            if (!quoted) strip_trailing_punct(t);
            bool classed = false;
            for (size_t c = 0; !quoted && c < sizeof term_classes / sizeof term_classes[0]; c++)
                if (strcasecmp(t, term_classes[c].word) == 0 && id != S_TERM_ANY_CAPS) {
                    free(t);
                    t = agx_strdup(term_classes[c].regex);
                    if (!t) {
                        a->oom = true;
                        return;
                    }
                    classed = quoted = true; /* exempt from the stop words */
                    a->term_regex = true;
                    break;
                }
            bool reject = !*t || (!quoted && (is_stopword(t) || is_known_file_name(t) || ((id == S_TERM_SEARCH || id == S_TERM_FOR ||
                                                                  id == S_TERM_OCCURRENCES || id == S_TERM_APPEARS) &&
                                                                 looks_like_file(t))));
            size_t gs = 0, ge = 0;
            if (group(a, g, &gs, &ge) && in_spans(a->used, a->n_used, gs)) reject = true; /* claimed */
            for (size_t c = 0; id == S_TERM_ANY_CAPS && c < sizeof caps_not_terms / sizeof caps_not_terms[0]; c++)
                reject |= strcmp(t, caps_not_terms[c]) == 0;
            if (!reject && id == S_TERM_LEVEL) a->flag[F_CASE] = true;
            if (!reject && (id == S_TERM_START || id == S_TERM_END)) {
                if (negated_before(a, m_start, 12)) a->invert = true; /* "lines that do not start with #" */
                /* anchored: the word itself, escaped (a class such as "a digit" is a regex
                 * already), at the start or end of the line */
                const char *named = quoted ? NULL : char_name(t); /* "end in a period" */
                char *x = classed ? agx_strdup(t)
                                  : ere_escape(named && strcmp(named, "\\t") != 0 && strcmp(named, "\\n") != 0 ? named
                                                                                                          : t);
                char *anchored = x ? agx_sprintf(id == S_TERM_START ? "^%s" : "%s$", x) : NULL;
                free(x);
                free(t);
                if (!anchored) {
                    a->oom = true;
                    return;
                }
                t = anchored;
                a->term_regex = true;
            }
            if (!reject && !quoted && !classed) singular(t); /* "errors" finds "error" too (not an IP: not letters) */
            if (!reject && !quoted && (id == S_TERM_IP || is_ipv4(t))) { /* dots are literal */
                char *x = ere_escape(t);
                free(t);
                if (!x) {
                    a->oom = true;
                    return;
                }
                t = x;
                a->term_regex = true;
            }
            if (!reject) {
                a->term = t;
                a->invert = a->invert || id == S_TERM_INVERT;
                if (id == S_TERM_LINES && group(a, 1, &s, &e)) a->invert = true;
                a->occurrences_of_term = id == S_TERM_OCCURRENCES || id == S_TERM_APPEARS;
                group(a, g, &s, &e);
                mark_used(a, s, e);
                extract_or_term(a, e);
                return;
            }
            free(t);
            if (classed) a->term_regex = false;
            from = m_end > m_start ? m_start + 1 : m_end + 1;
        }
    }
    /* "count empty lines": the empty line is the pattern */
    if (!a->flag[F_BLANK] && match_from(a, a->rb->slots[S_TERM_EMPTY], 0)) {
        a->term = agx_strdup("^$");
        if (!a->term) a->oom = true;
        return;
    }
    /* a quoted string nobody else claimed is what to look for, when the
     * instruction is about finding or showing lines at all */
    for (size_t i = 0; i < a->n_quoted && a->flag[F_SEARCHY]; i++) {
        if (in_spans(a->used, a->n_used, a->quoted[i].start)) continue;
        a->term = agx_strndup(a->text + a->quoted[i].start + 1, a->quoted[i].end - a->quoted[i].start - 2);
        if (!a->term) a->oom = true;
        mark_used(a, a->quoted[i].start, a->quoted[i].end);
        return;
    }
}

static bool looks_like_file(const char *s) {
    /* name.ext with a letter-led extension: access.log, README.md, src/main.c; or Makefile */
    const char *base = strrchr(s, '/');
    base = base ? base + 1 : s;
    if (is_known_file_name(base)) return true;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || !isalpha((unsigned char)dot[1]) || strlen(dot + 1) > 8) return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-/~+", *p)) return false;
    return strcasecmp(base, "e.g") != 0 && strcasecmp(base, "i.e") != 0 && strcasecmp(base, "etc.") != 0;
}

/* A path that starts with '-' would read as an option: "./-x" names the same file. */
static char *operand(char *path) {
    if (!path || path[0] != '-') return path;
    char *safe = agx_sprintf("./%s", path);
    free(path);
    return safe;
}

static char *set_str(analysis *a, char **dst, char *value) {
    if (!value) {
        a->oom = true;
        return NULL;
    }
    free(*dst);
    *dst = value;
    return value;
}

/* Walks the words outside quotes: globs, files and directories given as paths. */
static void extract_paths(analysis *a) {
    size_t i = 0;
    char prev[16] = "";
    while (i < a->len) {
        while (i < a->len && isspace((unsigned char)a->text[i])) i++;
        size_t s = i;
        while (i < a->len && !isspace((unsigned char)a->text[i])) i++;
        if (s == i) break;
        if (in_spans(a->quoted, a->n_quoted, s) || in_spans(a->used, a->n_used, s)) {
            prev[0] = '\0';
            continue;
        }
        char *tok = agx_strndup(a->text + s, i - s);
        if (!tok) {
            a->oom = true;
            return;
        }
        char *t = tok;
        while (*t == '(' || *t == '[') t++;
        size_t n = strlen(t);
        while (n > 1 && strchr(",;:?!)]", t[n - 1])) t[--n] = '\0';
        if (n > 1 && t[n - 1] == '.' && t[n - 2] != '.') t[--n] = '\0';
        bool after_in = strcmp(prev, "in") == 0 || strcmp(prev, "under") == 0 ||
                        strcmp(prev, "inside") == 0 || strcmp(prev, "within") == 0 ||
                        strcmp(prev, "from") == 0;
        char *slash = strrchr(t, '/');
        if (strpbrk(t, "*?") && n > 1) {
            if (slash && slash != t) {
                *slash = '\0';
                if (!a->dir) set_str(a, &a->dir, operand(agx_strdup(t)));
                set_str(a, &a->glob, agx_strdup(slash + 1));
            } else {
                set_str(a, &a->glob, agx_strdup(t));
            }
        } else if (n > 1 && t[n - 1] == '/') {
            t[n - 1] = '\0';
            if (!a->dir) set_str(a, &a->dir, operand(agx_strdup(t)));
        } else if ((strcmp(t, ".") == 0 || strcmp(t, "..") == 0 || strcmp(t, "~") == 0) && after_in) {
            if (!a->dir) set_str(a, &a->dir, agx_strdup(t));
        } else if (looks_like_file(t) && !(slash == NULL && t[0] == '.')) {
            if (a->n_files < MAX_ITEMS && !(a->n_files && strcmp(a->files[a->n_files - 1], t) == 0)) {
                a->files[a->n_files] = operand(agx_strdup(t));
                if (!a->files[a->n_files]) a->oom = true;
                a->n_files++;
            }
        } else if (slash && after_in) {
            if (!a->dir) set_str(a, &a->dir, operand(agx_strdup(t)));
        } else if (slash && t[0] == '/' && n > 1) {
            if (a->n_files < MAX_ITEMS && (a->files[a->n_files] = agx_strdup(t))) a->n_files++;
        }
        snprintf(prev, sizeof prev, "%s", tok);
        for (char *p = prev; *p; p++) *p = (char)tolower((unsigned char)*p);
        free(tok);
    }
}

/* The fields of one line split at delim (surrounding spaces and double quotes
 * trimmed), as [start, end) offsets; the count, or SIZE_MAX past max. */
static size_t split_fields(const char *line, size_t len, char delim, span *out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i <= len;) {
        size_t j = i;
        while (j < len && line[j] != delim) j++;
        if (n == max) return SIZE_MAX;
        size_t s = i, e = j;
        while (s < e && (line[s] == ' ' || line[s] == '"')) s++;
        while (e > s && (line[e - 1] == ' ' || line[e - 1] == '"' || line[e - 1] == '\r')) e--;
        out[n++] = (span){s, e};
        i = j + 1;
    }
    return n;
}

/* A header line is names (a letter first, then letters, digits, '_', '-', '.' or
 * spaces) over a data line with as many fields. */
static void read_csv_header(analysis *a, const char *excerpt) {
    const char *nl = strchr(excerpt, '\n');
    if (!nl) return;
    const size_t hl = (size_t)(nl - excerpt);
    const char delim = memchr(excerpt, '\t', hl) ? '\t' : memchr(excerpt, ',', hl) ? ',' : 0;
    if (!delim) return;
    span head[MAX_COL_NAMES], row[MAX_COL_NAMES];
    const size_t nh = split_fields(excerpt, hl, delim, head, MAX_COL_NAMES);
    const char *r = nl + 1, *rend = strchr(r, '\n');
    const size_t rl = rend ? (size_t)(rend - r) : strlen(r);
    if (nh < 2 || nh == SIZE_MAX || split_fields(r, rl, delim, row, MAX_COL_NAMES) != nh) return;
    for (size_t i = 0; i < nh; i++) {
        const size_t n = head[i].end - head[i].start;
        const char *h = excerpt + head[i].start;
        if (n == 0 || n > 40 || !isalpha((unsigned char)h[0])) return;
        for (size_t k = 0; k < n; k++)
            if (!isalnum((unsigned char)h[k]) && !strchr("_-. ", h[k])) return;
    }
    for (size_t i = 0; i < nh; i++) {
        char *name = agx_strndup(excerpt + head[i].start, head[i].end - head[i].start);
        if (!name) {
            a->oom = true;
            return;
        }
        a->col_names[a->n_col_names++] = name;
        char num[64];
        const size_t vl = row[i].end - row[i].start;
        if (vl > 0 && vl < sizeof num) {
            memcpy(num, r + row[i].start, vl);
            num[vl] = '\0';
            char *end = NULL;
            strtod(num, &end);
            a->col_numeric[i] = end && *end == '\0';
        }
    }
    a->csv_delim = delim;
}

/* The keys of piped JSON ("name": ...), from its excerpt (which may be cut
 * short, so it is scanned, not parsed): the first MAX_COL_NAMES distinct ones. */
static void read_json_keys(analysis *a, const char *excerpt) {
    for (const char *p = excerpt; (p = strchr(p, '"')) != NULL && a->n_col_names < MAX_COL_NAMES;) {
        const char *k = ++p;
        while (*p && (isalnum((unsigned char)*p) || *p == '_')) p++;
        if (*p != '"' || p == k || !isalpha((unsigned char)*k)) continue; /* a value, or not a plain key */
        const char *q = p + 1;
        while (*q == ' ') q++;
        if (*q != ':') {
            p++;
            continue;
        }
        bool seen = false;
        for (size_t i = 0; i < a->n_col_names && !seen; i++)
            seen = strlen(a->col_names[i]) == (size_t)(p - k) && !strncmp(a->col_names[i], k, (size_t)(p - k));
        if (!seen) {
            char *key = agx_strndup(k, (size_t)(p - k));
            if (!key) {
                a->oom = true;
                return;
            }
            a->col_names[a->n_col_names++] = key;
        }
        p = q + 1;
    }
}

/* Words of F_EXTREME / S_EXTREME_NAMED that ask for a minimum. */
static const char *const min_words[] = {"min", "minimum", "lowest", "smallest", "youngest", NULL};
/* Words that make F_COUNT's "total" a sum ("the total age"). */
static const char *const total_words[] = {"total", NULL};

/* How much of s[0..len) names the column col as a whole word, plurals too ("ages",
 * "cities" for "city", "addresses"); 0 when it does not. */
static size_t col_name_len(const char *s, size_t len, const char *col) {
    const size_t n = strlen(col);
    size_t e = n;
    if (n > 1 && tolower((unsigned char)col[n - 1]) == 'y' && n + 2 <= len && strncasecmp(s, col, n - 1) == 0 &&
        strncasecmp(s + n - 1, "ies", 3) == 0)
        e = n + 2;
    else if (n > len || strncasecmp(s, col, n) != 0)
        return 0;
    else if (e + 1 < len && strncasecmp(s + e, "es", 2) == 0 && strchr("sxz", tolower((unsigned char)col[n - 1])))
        e += 2;
    else if (e < len && (s[e] == 's' || s[e] == 'S'))
        e++;
    return e < len && (isalnum((unsigned char)s[e]) || s[e] == '_') ? 0 : e;
}

/* The column (1-based) a word names, plurals too; 0 for none. */
static long column_index(const analysis *a, const char *w) {
    const size_t wn = strlen(w);
    for (size_t c = 0; c < a->n_col_names; c++)
        if (col_name_len(w, wn, a->col_names[c]) == wn) return (long)c + 1;
    return 0;
}

/* "the highest age" of piped CSV or JSON: the column (1-based, 0 for none) whose
 * maximum (minimum: flag_says on F_EXTREME) is asked for; *of_item: the row or
 * item that has it is asked for ("the person with the highest age", "the oldest
 * person": an age column); *top: how many, when a number says ("the 3 highest
 * ages"), else 0. */
static long extreme_column(analysis *a, bool *of_item, long *top) {
    if (!match_from(a, a->rb->slots[S_EXTREME_NAMED], 0)) return 0;
    size_t s, e, with_s, with_e;
    char *w = group_dup(a, 5, NULL), *word = group_dup(a, 3, NULL);
    char *n = group(a, 2, &s, &e) ? group_dup(a, 2, NULL) : group(a, 4, &s, &e) ? group_dup(a, 4, NULL) : NULL;
    long col = w ? column_index(a, w) : 0;
    *of_item = group(a, 1, &with_s, &with_e);
    if (col <= 0 && word && (!strcasecmp(word, "oldest") || !strcasecmp(word, "youngest"))) {
        col = column_index(a, "age"); /* "the oldest person": the row, by age */
        *of_item = true;
    }
    *top = n ? number_value(n) : 0;
    free(w);
    free(word);
    free(n);
    if (col <= 0 || *top < 0 || !group(a, 3, &s, &e)) return 0;
    mark_match_used(a);
    a->flag[F_EXTREME] = true;
    a->flag_at[F_EXTREME] = s; /* where flag_says reads which way */
    return col;
}

/* The 1-based column (CSV header name or JSON key) the instruction names ("the
 * age column", "per city"; plurals allowed), 0 when none. "Sorted by age" is
 * S_SORT_BY_NAMED's. */
static long named_column(analysis *a) {
    for (size_t i = 0; i < a->len; i++) {
        if (i > 0 && (isalnum((unsigned char)a->text[i - 1]) || a->text[i - 1] == '_')) continue;
        if (in_spans(a->used, a->n_used, i) || in_spans(a->quoted, a->n_quoted, i)) continue;
        for (size_t c = 0; c < a->n_col_names; c++) {
            const size_t m = col_name_len(a->text + i, a->len - i, a->col_names[c]);
            if (!m) continue;
            const size_t e = i + m;
            mark_used(a, i, e);
            return (long)c + 1;
        }
    }
    return 0;
}

/* A web log's fields are named, not numbered ("per client IP", "the user agents"). */
static void map_log_field(analysis *a) {
    static const struct {
        slot_id id;
        long field;
        bool quoted; /* counted between double quotes: "GET / HTTP/1.1" is $2, the agent $6 */
    } log_fields[] = {{S_LOG_AGENT, 6, true}, {S_LOG_REFERER, 4, true}, {S_LOG_IP, 1, false},
                      {S_LOG_STATUS, 9, false}, {S_LOG_PATH, 7, false}, {S_LOG_BYTES, 10, false}};
    if (match_from(a, a->rb->slots[S_LOG_TIME], 0)) {
        char *unit = group_dup(a, a->rc - 1, NULL);
        if (unit) {
            const char u = (char)tolower((unsigned char)unit[0]);
            a->log_time_len = u == 'm' ? 17 : u == 'h' ? 14 : 11;
        }
        free(unit);
        return;
    }
    for (size_t i = 0; i < sizeof log_fields / sizeof log_fields[0] && !a->field; i++)
        if (match_from(a, a->rb->slots[log_fields[i].id], 0)) {
            a->field = log_fields[i].field;
            a->field_quoted = log_fields[i].quoted;
            /* "the total bytes sent": a sum of the byte column, not a byte count of the log */
            if (log_fields[i].id == S_LOG_BYTES && a->flag[F_COUNT] && !a->flag[F_PER_ITEM]) {
                a->flag[F_SUM] = true;
                a->flag[F_COUNT] = false;
            }
        }
}

/* Signals whose words are fully explained by the signal: nothing else may read
 * them as a search term or a file ("remove trailing whitespace"). */
static const flag_id consuming_flags[] = {F_TRAILING_WS, F_LEADING_WS, F_SQUEEZE, F_BLANK,       F_SKIP_HEADER,
                                          F_EMPTY_FILES,  F_CASE,       F_LOC,     F_RANKED_FILES, F_FIRST_AND_LAST,
                                          F_NO_EXT,       F_WORDS_PER_LINE, F_NO_COMMENTS, F_LINE_NUMBERS,
                                          F_KEEP_ORDER,   F_IGNORE_SPACE, F_IGNORE_BLANK_LINES};

/* A double-quoted string literal that awk and jq both read back as s. */
static char *string_literal(const char *s) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    agx_strbuf_putc(&sb, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') agx_strbuf_putc(&sb, '\\');
        agx_strbuf_putc(&sb, *s);
    }
    agx_strbuf_putc(&sb, '"');
    return agx_strbuf_take(&sb);
}

/* One more condition a row must meet (awk), owned. */
static void add_row_cond(analysis *a, char *cond) {
    if (cond && a->row_cond) { /* both must hold */
        char *both = agx_sprintf("%s && %s", a->row_cond, cond);
        free(cond);
        cond = both;
    }
    if (!cond) {
        a->oom = true;
        return;
    }
    free(a->row_cond);
    a->row_cond = cond;
}

/* The column a captured word names (a header name or JSON key, or a number or
 * ordinal: "column 2", "the second column"), 1-based; 0 for none. */
static long group_column(analysis *a, int g) {
    char *w = group_dup(a, g, NULL);
    long col = w ? column_index(a, w) : 0;
    if (w && !col && !a->json_array) col = strcasecmp(w, "last") ? number_value(w) : -1;
    free(w);
    return col > 0 && col <= 100 ? col : 0;
}

/* Columns of piped CSV or JSON named in the instruction, read before single names:
 * an aggregate per group ("the average age per city"), a column dropped, rows by a
 * column's text ("where name starts with b"), the column rows are sorted by ("the
 * names sorted by age"), two columns picked ("the name and city columns"). */
static void extract_named_columns(analysis *a) {
    const rules_backend *rb = a->rb;
    size_t s, e;
    if (match_from(a, rb->slots[S_DROP_COL], 0)) { /* numbered columns of any text too */
        const long col = group_column(a, group(a, 1, &s, &e) ? 1 : 2);
        if (col > 0) {
            a->drop_col = col;
            mark_match_used(a);
        }
    }
    if (!a->csv_delim && !a->json_array) return;
    if (match_from(a, rb->slots[S_GROUP_AGG], 0)) {
        char *how = group_dup(a, 1, NULL);
        const long col = group_column(a, 2), by = group_column(a, 3);
        for (size_t i = 0; how && col > 0 && by > 0 && col != by && i < sizeof group_aggs / sizeof group_aggs[0]; i++)
            for (size_t w = 0; w < 3 && group_aggs[i].words[w]; w++)
                if (!strncasecmp(how, group_aggs[i].words[w], 3)) a->agg = &group_aggs[i];
        if (a->agg) {
            a->agg_col = col;
            a->agg_by = by;
            /* the aggregate is the whole plan: no other sum, count or count per item */
            a->flag[F_SUM] = a->flag[F_AVERAGE] = a->flag[F_EXTREME] = a->flag[F_COUNT] = a->flag[F_PER_ITEM] = false;
            mark_match_used(a);
        }
        free(how);
    }
    if (match_from(a, rb->slots[S_COL_TEXT], 0)) {
        const long col = group_column(a, 1);
        bool quoted = false;
        char *how = group_dup(a, 2, NULL), *value = group_dup(a, 3, &quoted); /* "starts with a": "a" too */
        if (value && !quoted) strip_trailing_punct(value);
        char *lit = value && *value ? string_literal(value) : NULL;
        if (col > 0 && how && lit) {
            const char h = (char)tolower((unsigned char)how[0]);
            const char *key = a->col_names[col - 1];
            if (a->json_array) /* jq: startswith / endswith / contains */
                set_str(a, &a->json_select, agx_sprintf(".%s | tostring | %s(%s)", key,
                                                        h == 'e' ? "endswith" : h == 's' || h == 'b' ? "startswith"
                                                                                                     : "contains",
                                                        lit));
            else if (h == 'e') /* awk: the text at the end, at the start, or anywhere */
                add_row_cond(a, agx_sprintf("substr($%ld, length($%ld) - length(%s) + 1) == %s", col, col,
                                                     lit, lit));
            else
                add_row_cond(a, agx_sprintf(h == 's' || h == 'b' ? "index($%ld, %s) == 1" : "index($%ld, %s)",
                                                     col, lit));
            mark_match_used(a);
        }
        free(how);
        free(value);
        free(lit);
    }
    if (match_from(a, rb->slots[S_SORT_BY_NAMED], 0)) {
        const long col = group_column(a, 1);
        if (col > 0 && col <= (long)a->n_col_names) {
            if (a->json_array) {
                set_str(a, &a->json_sort_key, agx_strdup(a->col_names[col - 1]));
            } else {
                a->sort_key = col;
                if (a->col_numeric[col - 1]) a->flag[F_NUMERIC] = true;
            }
            a->flag[F_SORT] = true;
            mark_match_used(a);
        }
    }
    for (size_t from = 0; !a->fields[0] && !a->json_pick[0] && match_from(a, rb->slots[S_TWO_COLS], from);) {
        from = pcre2_get_ovector_pointer(a->md)[0] + 1;
        char *wx = group_dup(a, 2, NULL), *wy = group_dup(a, 3, NULL);
        const long cx = wx ? column_index(a, wx) : 0, cy = wy ? column_index(a, wy) : 0;
        const bool picked = group(a, 1, &s, &e) || group(a, 4, &s, &e);
        if (cx > 0 && cy > 0 && cx != cy && picked) {
            long *pair = a->json_array ? a->json_pick : a->fields;
            pair[0] = cx;
            pair[1] = cy;
            mark_match_used(a);
        }
        free(wx);
        free(wy);
    }
}

/* Web-log requests by status ($9) and path ($7): "which paths returned 500", "the 404
 * errors per path", "server errors", "requests to /api". */
static void extract_log_filters(analysis *a) {
    size_t s, e;
    if (match_from(a, a->rb->slots[S_LOG_STATUS_IS], 0)) {
        char *code = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : group_dup(a, 2, NULL);
        char *second = group(a, 3, &s, &e) ? group_dup(a, 3, NULL) : NULL;
        char *side = group(a, 4, &s, &e) ? group_dup(a, 4, NULL) : NULL;
        const bool not = negated_before(a, pcre2_get_ovector_pointer(a->md)[1], 24); /* "were not 200" */
        if (code && second) /* "4xx and 5xx" */
            add_row_cond(a, agx_sprintf("$9 %s /^[%c%c]/", not ? "!~" : "~", code[0], second[0]));
        else if (code && tolower((unsigned char)code[1]) == 'x') /* "5xx" */
            add_row_cond(a, agx_sprintf("$9 %s /^%c/", not ? "!~" : "~", code[0]));
        else if (code)
            add_row_cond(a, agx_sprintf("$9 %s %s", not ? "!=" : "==", code));
        else if (side)
            add_row_cond(a, agx_sprintf("$9 ~ /^%c/", tolower((unsigned char)side[0]) == 'c' ? '4' : '5'));
        else /* any error */
            add_row_cond(a, agx_strdup("$9 >= 400"));
        mark_match_used(a);
        free(code);
        free(second);
        free(side);
    }
    if (match_from(a, a->rb->slots[S_LOG_PATH_IS], 0)) {
        char *path = group_dup(a, 1, NULL), *lit = path ? string_literal(path) : NULL;
        if (lit) add_row_cond(a, agx_sprintf("index($7, %s) == 1", lit));
        mark_match_used(a); /* the path is no file operand */
        free(path);
        free(lit);
    }
}

/* Rows (awk '$N > V') or JSON items (select(.key > V)) by a column's value: the
 * column, and the groups of the last match that hold the comparison word and the
 * value (a number, or a word for equality). False when they say no such thing. */
static bool row_filter(analysis *a, long col, int word_group, int value_group) {
    char *word = group_dup(a, word_group, NULL), *value = group_dup(a, value_group, NULL);
    const char *op = comparison(word);
    const bool number = value && (isdigit((unsigned char)value[0]) || value[0] == '-');
    const bool ok = col > 0 && op && value && (number || strcmp(op, "==") == 0) &&
                    (!a->json_array || col <= (long)a->n_col_names); /* a key it names */
    if (ok) {
        mark_match_used(a);
        char *v = number ? agx_strdup(value) : string_literal(value);
        if (a->json_array) { /* jq select(.age > 4) */
            set_str(a, &a->json_select, v ? agx_sprintf(".%s %s %s", a->col_names[col - 1], op, v) : NULL);
            free(v);
        } else {
            a->cmp_field = col;
            a->cmp_op = op;
            set_str(a, &a->cmp_value, v);
        }
    }
    free(word);
    free(value);
    return ok;
}

/* Words that say "after" a line or a match ("everything after the first 2 lines", "the line
 * below each match"). */
static const char *const after_words[] = {"after", "following", "past", "below"};

/* "skip the first 3 lines", "all but the last line": lines dropped from an end of
 * the input (tail -n +4, head -n -1), the connective agreeing with the end named. */
static void extract_dropped_lines(analysis *a) {
    if (!match_from(a, a->rb->slots[S_DROP_LINES], 0)) return;
    char *joiner = group_dup(a, 2, NULL), *end = group_dup(a, 3, NULL), *k = group_dup(a, 4, NULL);
    static const char *const first_words[] = {"first", "top", "leading", "opening"};
    static const char *const before_words[] = {"before", "above", "preceding"};
    static const char *const item_words[] = {"item", "items", "object", "objects", "element", "elements"};
    const bool first = WORD_IN(first_words, end);
    /* a verb ("skip", "remove") or "except" / "but": either end */
    const bool agrees = WORD_IN(after_words, joiner) ? first : WORD_IN(before_words, joiner) ? !first : true;
    const long n = k ? number_value(k) : 1;
    size_t s, e;
    char *noun = group(a, 5, &s, &e) ? group_dup(a, 5, NULL) : group_dup(a, 6, NULL);
    if (end && agrees && n > 0) {
        mark_match_used(a);
        a->drop_items = a->json_array && WORD_IN(item_words, noun);
        /* "skip the first line" is the header skip (F_SKIP_HEADER) already */
        if (first && !(n == 1 && a->flag[F_SKIP_HEADER])) a->from_line = n + 1;
        if (!first) a->drop_last = n;
    }
    free(joiner);
    free(end);
    free(k);
    free(noun);
}

/* "join the lines with commas": the separator, quoted or named in words (a space
 * when none is named; no join when the word names no separator) */
static void extract_join(analysis *a) {
    if (!match_from(a, a->rb->slots[S_JOIN], 0)) return;
    size_t s, e;
    bool quoted = false;
    char *w = group(a, 1, &s, &e) ? group_dup(a, 1, &quoted) : NULL;
    const char *named = !w ? " " : quoted ? NULL : char_name(w);
    mark_match_used(a);
    if (w) mark_used(a, s, e);
    if (quoted && w && *w) {
        set_str(a, &a->join_with, w);
        w = NULL;
    } else if (named && strcmp(named, "\\n") != 0) {
        set_str(a, &a->join_with, agx_strdup(named));
    } else {
        snprintf(a->cannot, sizeof a->cannot, " (the rules planner cannot join lines with '%.40s': name a "
                 "separator such as commas or spaces, or quote it)", w ? w : "");
    }
    free(w);
}

/* Files and directories left out or picked by another file: "excluding node_modules",
 * "files that are not python files", "newer than main.c". */
static void extract_file_filters(analysis *a) {
    const rules_backend *rb = a->rb;
    size_t s = 0, e = 0;
    if (match_from(a, rb->slots[S_EXCLUDE_DIR], 0)) {
        const int g = first_group(a, 4, &s, &e);
        char *d = g ? group_dup(a, g, NULL) : NULL;
        if (d && !is_stopword(d)) {
            mark_match_used(a);
            set_str(a, &a->exclude_dir, d);
        } else {
            free(d);
        }
    }
    if (match_from(a, rb->slots[S_NOT_EXT], 0)) {
        const int g = first_group(a, 3, &s, &e);
        char *w = g && !in_spans(a->used, a->n_used, s) ? group_dup(a, g, NULL) : NULL;
        if (w) {
            mark_match_used(a);
            if (w[0] == '*') set_str(a, &a->glob_not, agx_strdup(w));
            else if (w[0] == '.') set_str(a, &a->glob_not, agx_sprintf("*%s", w));
            for (size_t i = 0; w[0] != '*' && w[0] != '.' && i < sizeof ext_words / sizeof ext_words[0]; i++)
                if (strcasecmp(w, ext_words[i].word) == 0) set_str(a, &a->glob_not, agx_strdup(ext_words[i].glob));
        }
        free(w);
    }
    if (match_from(a, rb->slots[S_NEWER_FILE], 0)) {
        a->find_older = strncasecmp(a->text + pcre2_get_ovector_pointer(a->md)[0], "older", 5) == 0;
        set_str(a, &a->find_newer, group_dup(a, 2, NULL));
        mark_match_used(a);
    }
}

/* A file's age for find -mtime / -mmin: -N within the last N, +N longer ago, N
 * exactly ("modified 3 days ago"). The three phrasings share their groups: 1 says
 * which way, 2 how many (one when absent), 3 the unit. */
static void extract_file_age(analysis *a) {
    static const slot_id phrasings[] = {S_MTIME, S_AGE, S_AGO};
    for (size_t i = 0; i < sizeof phrasings / sizeof phrasings[0]; i++) {
        const slot_id id = phrasings[i];
        if (!match_from(a, a->rb->slots[id], 0)) continue;
        size_t s, e;
        char *way = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        char *n = group(a, 2, &s, &e) ? group_dup(a, 2, NULL) : NULL;
        char *unit = group_dup(a, 3, NULL);
        const long v = n ? number_value(n) : 1;
        if (unit && v > 0) {
            const char u = (char)tolower((unsigned char)unit[0]);
            /* "not modified in the last ...", "older than ...", "more than / at least ... ago": longer ago */
            const bool before = id == S_MTIME ? way != NULL
                                : id == S_AGE ? strcasecmp(way, "older") == 0
                                              : way && (is_greater(way) || !strncasecmp(way, "at least", 8));
            const char *sign = id == S_AGO && !way ? "" : before ? "+" : "-";
            set_str(a, &a->find_time_flag, agx_strdup(u == 'm' || u == 'h' ? "-mmin" : "-mtime"));
            set_str(a, &a->find_time, agx_sprintf("%s%ld", sign, u == 'h' ? v * 60 : u == 'w' ? v * 7 : v));
            mark_match_used(a); /* "last 7" is not tail -n 7 */
        }
        free(way);
        free(n);
        free(unit);
        return;
    }
}

/* Whole-line reshaping read before anything else can take its words: "number the
 * lines", "every third line", "wrap at 40", "swap the first two columns", "capitalize
 * each word", "the last 3 characters". */
static void extract_line_edits(analysis *a) {
    const rules_backend *rb = a->rb;
    size_t s = 0, e = 0;
    if (match_from(a, rb->slots[S_NUMBER_LINES], 0)) {
        a->number_nonempty = group(a, 1, &s, &e);
        if (a->number_nonempty) a->flag[F_BLANK] = false; /* nl skips the empty lines, it does not drop them */
        else a->flag[F_LINE_NUMBERS] = true;
        mark_match_used(a);
    }
    if (match_from(a, rb->slots[S_EVERY_NTH], 0)) {
        char *k = group_dup(a, 1, NULL);
        const long v = k ? number_value(k) : -1;
        if (v > 2) {
            a->every_nth = v;
            mark_match_used(a);
        }
        free(k);
    }
    if (match_from(a, rb->slots[S_WRAP], 0)) {
        char *k = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        a->wrap_width = k ? number_value(k) : 80;
        if (a->wrap_width > 0) mark_match_used(a);
        free(k);
    }
    if (match_from(a, rb->slots[S_SWAP], 0)) {
        const int g = first_group(a, 4, &s, &e); /* 1: "columns 1 and 3", 3: "second and third" */
        char *x = g ? group_dup(a, g, NULL) : NULL, *y = g ? group_dup(a, g + 1, NULL) : NULL;
        a->swap[0] = x ? number_value(x) : 1;
        a->swap[1] = y ? number_value(y) : 2;
        if (a->swap[0] > 0 && a->swap[1] > 0 && a->swap[0] != a->swap[1]) mark_match_used(a);
        else a->swap[0] = a->swap[1] = 0; /* "last" or one column twice: not understood */
        free(x);
        free(y);
    }
    if (match_from(a, rb->slots[S_CAPITALIZE], 0)) {
        char *w = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        a->capitalize = !w || tolower((unsigned char)w[0]) == 'w' ? 'w' : 'l'; /* "title case": words */
        a->flag[F_UPPER] = false; /* one letter, not every letter */
        mark_match_used(a);
        free(w);
    }
    if (match_from(a, rb->slots[S_LAST_CHARS], 0)) {
        char *k = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        a->last_chars = k ? number_value(k) : 1;
        if (a->last_chars > 0) mark_match_used(a); /* not tail -n N */
        free(k);
    }
}

/* An integer of a sequence: digits (0 and negatives too) or a number word. */
static bool seq_number(const char *w, long *out) {
    if (!w) return false;
    if (w[0] == '-' || isdigit((unsigned char)w[0])) {
        errno = 0;
        char *end;
        long v = strtol(w, &end, 10);
        if (errno || *end || v < -1000000000L || v > 1000000000L) return false;
        *out = v;
        return true;
    }
    if (strcasecmp(w, "zero") == 0) {
        *out = 0;
        return true;
    }
    *out = number_value(w);
    return *out > 0;
}

/* Tools for whole inputs or files rather than lines: shuf, checksums, base64, od, seq,
 * join. */
static void extract_byte_tools(analysis *a) {
    const rules_backend *rb = a->rb;
    size_t s = 0, e = 0;
    if (match_from(a, rb->slots[S_RANDOM_N], 0)) {
        const int g = first_group(a, 3, &s, &e);
        char *k = g ? group_dup(a, g, NULL) : NULL;
        a->random_n = k ? number_value(k) : 1; /* "a random line" */
        if (a->random_n > 0) mark_match_used(a);
        else a->random_n = 0;
        free(k);
    }
    if (match_from(a, rb->slots[S_SHUFFLE], 0)) {
        a->shuffle = true;
        a->flag[F_SORT] = false; /* "sort the lines in random order" */
        mark_match_used(a);
    }
    if (match_from(a, rb->slots[S_CHECKSUM], 0)) {
        char *alg = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        if (!alg || strncasecmp(alg, "sha", 3) == 0) {
            /* sha256 unless another SHA is named */
            const char *digits = alg ? alg + 3 + (alg[3] == '-') : "256";
            if (strcmp(digits, "256") == 0) a->checksum_tool = "sha256sum";
        } else if (strcasecmp(alg, "md5") == 0) {
            a->checksum_tool = "md5sum";
        }
        if (!a->checksum_tool)
            snprintf(a->cannot, sizeof a->cannot, " (the tool registry has md5sum and sha256sum, not a '%.20s' "
                     "checksum tool)", alg);
        mark_match_used(a);
        free(alg);
    }
    if (a->flag[F_DUP_FILES]) {
        if (!a->checksum_tool) a->checksum_tool = "md5sum"; /* the fastest of the two, enough to compare */
        if (match_from(a, rb->flags[F_DUP_FILES], 0)) mark_match_used(a);
    }
    if (match_from(a, rb->slots[S_BASE64], 0)) {
        char *before = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        char *after = group(a, 3, &s, &e) ? group_dup(a, 3, NULL) : NULL;
        const bool from = group(a, 2, &s, &e);
        a->base64 = from || (before && strncasecmp(before, "de", 2) == 0) || (after && strncasecmp(after, "de", 2) == 0)
                        ? 'd'
                        : 'e';
        mark_match_used(a);
        free(before);
        free(after);
    }
    if (match_from(a, rb->slots[S_DUMP], 0)) {
        a->dump = group(a, 1, &s, &e) ? 'o' : 'x';
        mark_match_used(a);
    }
    if (!a->piped && match_from(a, rb->slots[S_SEQ], 0)) { /* piped: numbers in the input */
        char *parity = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        const bool counting = group(a, 2, &s, &e); /* "count from 1 to 10" is no count of lines */
        char *from = group_dup(a, 3, NULL), *to = group_dup(a, 4, NULL);
        char *by = group(a, 5, &s, &e) ? group_dup(a, 5, NULL) : NULL;
        long first = 0, last = 0, step = 1;
        if (seq_number(from, &first) && seq_number(to, &last) && (!by || (seq_number(by, &step) && step > 0))) {
            if (parity) { /* every other number, starting at the first of that parity */
                const long want = tolower((unsigned char)parity[0]) == 'o';
                if (((first % 2) + 2) % 2 != want) first += first > last ? -1 : 1;
                if (!by) step = 2;
            }
            if (first > last) step = -step; /* "from 10 to 1": counting down */
            if (a->flag[F_REVERSE] && !a->flag[F_SORT]) { /* "1 to 20 in reverse order": from the other end */
                const long end = last - (last - first) % step; /* the last number reached */
                last = first;
                first = end;
                step = -step;
            }
            a->seq[0] = first;
            a->seq[1] = step;
            a->seq[2] = last;
            a->seq_set = true;
            if (counting) a->flag[F_COUNT] = false;
            mark_match_used(a);
        }
        free(parity);
        free(from);
        free(to);
        free(by);
    }
    if (match_from(a, rb->slots[S_JOIN_FILES], 0)) {
        a->join_files = true;
        if (match_from(a, rb->slots[S_JOIN_KEY], 0)) {
            const int g = first_group(a, 3, &s, &e);
            if (g != 3) a->join_key = group_column(a, g);
            else { /* a name: no header of the files is known here */
                char *w = group_dup(a, 3, NULL);
                snprintf(a->cannot, sizeof a->cannot, " (join needs the key as a field number, e.g. 'on the "
                         "second field', not '%.40s')", w ? w : "");
                free(w);
            }
            mark_match_used(a);
        }
    }
}

/* Words that name a match rather than the text matched ("the line after each match"). */
static const char *const match_nouns[] = {"match", "matches", "hit", "hits", "occurrence", "occurrences",
                                          "mention", "mentions", "one", "it"};

/* grep's context lines: -A / -B / -C N, or the neighbouring line alone ("the line after
 * each match of X": awk), and the search word when it follows. */
static void extract_context(analysis *a) {
    if (!match_from(a, a->rb->slots[S_CONTEXT], 0)) return;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
    const size_t m_start = ov[0];
    size_t m_end = ov[1], s, e;
    char *n = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : group(a, 6, &s, &e) ? group_dup(a, 6, NULL) : NULL;
    char *noun = group(a, 2, &s, &e) ? group_dup(a, 2, NULL) : NULL;
    char *side = group(a, 4, &s, &e) ? group_dup(a, 4, NULL) : NULL;
    static const char *const around_words[] = {"around", "surrounding"};
    const bool both = group(a, 5, &s, &e) || !side || WORD_IN(around_words, side);
    /* "the lines after X" with no count and no "of context" is everything after X: not grep's context */
    const long v = n ? number_value(n) : noun && !strcasecmp(noun, "line") ? 1 : group(a, 3, &s, &e) ? 2 : -1;
    if (v > 0 && v <= 1000) {
        const bool after = !both && WORD_IN(after_words, side);
        a->context_before = both || !after ? v : 0;
        a->context_after = both || after ? v : 0;
        /* "the line after each match": that line, not the match with it */
        a->context_only = !both && !n && noun && !strcasecmp(noun, "line");
        const bool has_word = group(a, 7, &s, &e);
        char *t = has_word && !a->term && !in_spans(a->used, a->n_used, s) ? term_group(a, 7) : NULL;
        if (t && !WORD_IN(match_nouns, t) && !looks_like_file(t)) {
            a->term = t;
            t = NULL;
        } else if (has_word) { /* only the context words are taken */
            m_end = s;
        }
        free(t);
        mark_used(a, m_start, m_end);
    }
    free(n);
    free(noun);
    free(side);
}

static void extract_slots(analysis *a) {
    const rules_backend *rb = a->rb;
    size_t s = 0, e = 0;
    extract_line_edits(a);
    extract_byte_tools(a);
    if (match_from(a, rb->slots[S_WS_LINES], 0)) { /* lines to find, not to clean */
        set_str(a, &a->term, agx_strdup("[[:space:]]$"));
        a->term_regex = true;
        a->flag[F_TRAILING_WS] = false;
        mark_match_used(a);
    }
    extract_join(a);
    extract_dropped_lines(a);
    extract_file_filters(a);
    if (match_from(a, rb->slots[S_FROM_END], 0)) { /* "the second to last line" */
        char *k = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : NULL;
        a->from_end = !k || strcasecmp(k, "next") == 0 ? 2 : number_value(k);
        free(k);
        mark_match_used(a);
    }
    if (match_from(a, rb->slots[S_NF_CMP], 0)) {
        char *w = group_dup(a, 1, NULL), *n = group_dup(a, 2, NULL);
        const long v = n ? number_value(n) : -1;
        const char *op = w && strcasecmp(w, "exactly") == 0 ? "==" : comparison(w);
        if (op && v >= 0) {
            a->nf_op = op;
            a->nf_value = v;
            mark_match_used(a);
        }
        free(w);
        free(n);
    }
    if (match_from(a, rb->slots[S_BETWEEN], 0)) { /* not "lines between 3 and 5" (S_LINE_RANGE) */
        char *x = term_group(a, 1), *y = term_group(a, 2);
        if (x && y && !(number_value(x) > 0 && number_value(y) > 0)) {
            a->between[0] = x;
            a->between[1] = y;
            x = y = NULL;
            mark_match_used(a);
        }
        free(x);
        free(y);
    }
    /* all found before any is marked, so that overlapping ones ("ignoring case and blank
     * lines": F_CASE and F_IGNORE_BLANK_LINES from the same "ignoring") all take their words */
    enum { N_CONSUMING = sizeof consuming_flags / sizeof consuming_flags[0] };
    span taken[N_CONSUMING];
    size_t n_taken = 0;
    for (size_t i = 0; i < N_CONSUMING; i++)
        if (a->flag[consuming_flags[i]] && match_from(a, rb->flags[consuming_flags[i]], 0)) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
            taken[n_taken++] = (span){ov[0], ov[1]};
        }
    for (size_t i = 0; i < n_taken; i++) mark_used(a, taken[i].start, taken[i].end);
    if (a->flag[F_KEEP_ORDER]) /* "without sorting" asks for no sort */
        a->flag[F_SORT] = match_from(a, rb->flags[F_SORT], 0);
    /* replace X with Y claims its words before anything else reads them */
    if (match_from(a, rb->slots[S_REPLACE], 0)) {
        bool quoted = false;
        set_str(a, &a->replace_from, group_dup(a, 1, &quoted));
        set_str(a, &a->replace_to, group_dup(a, 2, NULL));
        for (size_t i = 0; !quoted && a->replace_from && i < sizeof replace_classes / sizeof replace_classes[0]; i++)
            if (!strcasecmp(a->replace_from, replace_classes[i].word)) a->replace_class = replace_classes[i].bre;
        mark_match_used(a);
    }
    if (!a->replace_from && match_from(a, rb->slots[S_CONVERT_CHARS], 0)) {
        char *x = group_dup(a, 1, NULL), *y = group_dup(a, 2, NULL);
        if (x && y && char_name(x) && char_name(y)) { /* "convert tabs to commas" */
            a->replace_from = x;
            a->replace_to = y;
            x = y = NULL;
            mark_match_used(a);
        }
        free(x);
        free(y);
    }
    if (!a->replace_from && a->flag[F_TO_TSV] != a->flag[F_TO_CSV]) {
        /* "convert data.csv to tab separated": one separator for the other */
        a->replace_from = agx_strdup(a->flag[F_TO_TSV] ? "commas" : "tabs");
        a->replace_to = agx_strdup(a->flag[F_TO_TSV] ? "tabs" : "commas");
        if (!a->replace_from || !a->replace_to) a->oom = true;
    }
    if (match_from(a, rb->slots[S_DELETE_CLASS], 0)) {
        static const struct {
            const char *word, *set;
        } classes[] = {{"digits", "[:digit:]"}, {"numbers", "[:digit:]"}, {"punctuation", "[:punct:]"},
                       {"spaces", " "}, {"whitespace", "[:blank:]"}, {"tabs", "\\t"},
                       {"commas", ","}, {"quotes", "\"'"}};
        char *w = group_dup(a, 1, NULL);
        for (size_t i = 0; w && i < sizeof classes / sizeof classes[0]; i++)
            if (strcasecmp(w, classes[i].word) == 0) a->delete_set = classes[i].set;
        free(w);
        mark_match_used(a);
    }
    if (match_from(a, rb->slots[S_LONGER], 0)) {
        char *k = group_dup(a, 1, NULL);
        char *n = group_dup(a, 2, NULL);
        long v = n ? number_value(n) : -1;
        if (k && v >= 0) {
            if (is_greater(k)) a->longer_than = v;
            else a->shorter_than = v;
            mark_match_used(a);
        }
        free(k);
        free(n);
    }
    if (!a->line_from && match_from(a, rb->slots[S_DROP_RANGE], 0)) { /* sed 'A,Bd' */
        char *x = group_dup(a, 1, NULL), *y = group_dup(a, 2, NULL), *o = group_dup(a, 3, NULL);
        long from = x ? number_value(x) : o && strcasecmp(o, "last") != 0 ? number_value(o) : -1;
        long to = y ? number_value(y) : from;
        if (from > 0 && to >= from) {
            a->line_from = from;
            a->line_to = to;
            a->line_delete = true;
            mark_match_used(a);
        }
        free(x);
        free(y);
        free(o);
    }
    if (match_from(a, rb->slots[S_AFTER_LINE], 0)) { /* tail -n +N */
        const bool to_end = group(a, 4, &s, &e); /* "lines 100 to the end": from 100 on */
        char *how = to_end ? agx_strdup("from") : group_dup(a, 1, NULL), *k = group_dup(a, to_end ? 4 : 2, NULL);
        long v = k ? number_value(k) : -1;
        if (how && v > 0) {
            bool inclusive = strncasecmp(how, "from", 4) == 0 || strncasecmp(how, "starting", 8) == 0;
            a->from_line = inclusive ? v : v + 1;
            mark_match_used(a);
        }
        free(how);
        free(k);
    }
    extract_context(a); /* "3 lines before X" is grep's context, "the lines before X" all of them */
    if (match_from(a, rb->slots[S_AFTER_MATCH], 0)) { /* "everything after 'START'" */
        char *side = group_dup(a, 1, NULL), *w = term_group(a, 2);
        size_t ws = 0, we = 0;
        const bool quoted = group(a, 2, &ws, &we) && we > ws && strchr("'\"`", a->text[ws]) != NULL;
        /* "the lines from names.txt" names the file to read, not a line to start at */
        const bool names_file = side && w && !quoted && !strncasecmp(side, "from", 4) && looks_like_file(w);
        if (side && w && !names_file && number_value(w) < 0 && strcasecmp(w, "line") && strcasecmp(w, "lines")) {
            static const struct {
                const char *word;
                char side;
            } sides[] = {{"after", 'a'}, {"following", 'a'}, {"below", 'a'}, {"from", 'f'}, {"starting", 'f'},
                         {"before", 'b'}, {"above", 'b'}, {"preceding", 'b'}, {"up", 'b'}, {"until", 'b'}};
            for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++)
                if (!strncasecmp(side, sides[i].word, strlen(sides[i].word))) a->after_side = sides[i].side;
            a->after_word = w;
            w = NULL;
            mark_match_used(a);
        }
        free(side);
        free(w);
    }
    if (match_from(a, rb->slots[S_LINE_ORD], 0)) { /* "the third line"; first/last are head/tail */
        char *k = group_dup(a, 1, NULL);
        long v = k && strcasecmp(k, "last") != 0 ? number_value(k) : -1;
        if (v > 1) {
            a->line_from = a->line_to = v;
            mark_match_used(a);
        }
        free(k);
    }
    if (!a->line_from && (match_from(a, rb->slots[S_LINE_RANGE], 0) || match_from(a, rb->slots[S_LINE_ONE], 0))) {
        char *x = group_dup(a, 1, NULL);
        char *y = group(a, 2, &s, &e) ? group_dup(a, 2, NULL) : NULL;
        long from = x ? number_value(x) : -1, to = y ? number_value(y) : from;
        if (from > 0 && to >= from) {
            a->line_from = from;
            a->line_to = to;
            mark_match_used(a);
        }
        free(x);
        free(y);
    }
    extract_file_age(a); /* before sizes: in "modified more than 3 days ago", "more than 3" is no size */
    if (!a->find_time && match_from(a, rb->slots[S_ON_DAY], 0)) { /* since midnight, or the day before */
        char *day = group_dup(a, 1, NULL);
        a->find_daystart = true;
        set_str(a, &a->find_time_flag, agx_strdup("-mtime"));
        set_str(a, &a->find_time, agx_strdup(day && tolower((unsigned char)day[0]) == 'y' ? "1" : "0"));
        mark_match_used(a);
        free(day);
    }
    if ((a->piped || a->log_input) && !a->flag[F_FILES] && match_from(a, rb->slots[S_RECENT], 0))
        snprintf(a->cannot, sizeof a->cannot, " (the rules planner cannot pick lines by their time relative to "
                                              "now; name the date as it is written in the input, e.g. "
                                              "'10/Oct/2023:13')");
    if (match_from(a, rb->slots[S_SIZE], 0)) {
        char *cmp = group_dup(a, 1, NULL), *n = group_dup(a, 2, NULL);
        char *unit = group(a, 3, &s, &e) ? group_dup(a, 3, NULL) : NULL;
        /* by the unit's first letter (kb, kib, kilobytes: k; megs: M; gigs: G); bytes or none: c */
        static const char unit_letters[] = "kmg";
        static const char *const find_suffixes[] = {"k", "M", "G"};
        const char *letter = unit ? strchr(unit_letters, tolower((unsigned char)unit[0])) : NULL;
        const char *suffix = letter ? find_suffixes[letter - unit_letters] : "c";
        if (cmp && n) {
            set_str(a, &a->find_size, agx_sprintf("%c%s%s", is_greater(cmp) ? '+' : '-', n, suffix));
            mark_match_used(a);
        }
        free(cmp);
        free(n);
        free(unit);
    }
    if (match_from(a, rb->slots[S_NAMED], 0)) {
        a->named_dir = strncasecmp(a->text + pcre2_get_ovector_pointer(a->md)[0], "fil", 3) != 0;
        bool quoted;
        char *kind = group_dup(a, 1, NULL);
        char *name = group_dup(a, 2, &quoted);
        if (kind && name) {
            if (!quoted) strip_trailing_punct(name);
            bool ending = strncasecmp(kind, "ending", 6) == 0 || strstr(kind, "extension") ||
                          strstr(kind, "suffix");
            if (strpbrk(name, "*?"))
                set_str(a, &a->glob, agx_strdup(name));
            else if (name[0] == '.')
                set_str(a, &a->glob, agx_sprintf("*%s", name));
            else if (ending)
                set_str(a, &a->glob, agx_sprintf(strstr(kind, "ending") ? "*%s" : "*.%s", name));
            else {
                set_str(a, &a->glob, agx_strdup(name));
                a->named_exact = true;
            }
            group(a, 2, &s, &e);
            mark_used(a, s, e);
        }
        free(kind);
        free(name);
    }
    if (!a->glob && match_from(a, rb->slots[S_NAME_HAS], 0)) { /* "files with 'config' in their name" */
        char *w = term_group(a, first_group(a, 2, &s, &e));
        if (w) {
            set_str(a, &a->glob, strpbrk(w, "*?") ? agx_strdup(w) : agx_sprintf("*%s*", w));
            mark_match_used(a);
        }
        free(w);
    }
    if (!a->glob && match_from(a, rb->slots[S_KNOWN_FILES], 0)) { /* "every Makefile" */
        set_str(a, &a->glob, group_dup(a, first_group(a, 2, &s, &e), NULL));
        a->named_exact = true;
        mark_match_used(a);
    }
    if (!a->glob && match_from(a, rb->slots[S_EXT_PAIR], 0)) { /* ".c and .h files" */
        char *x = group_dup(a, 1, NULL), *y = group_dup(a, 2, NULL);
        if (x && y) {
            set_str(a, &a->glob, agx_sprintf("*%s", x));
            set_str(a, &a->glob2, agx_sprintf("*%s", y));
        }
        free(x);
        free(y);
        mark_match_used(a);
    }
    if (!a->glob && match_from(a, rb->slots[S_EXT_DOT], 0)) {
        char *ext = group_dup(a, 1, NULL);
        if (ext) set_str(a, &a->glob, agx_sprintf("*%s", ext));
        free(ext);
        group(a, 1, &s, &e);
        mark_used(a, s, e);
    }
    if (!a->glob && match_from(a, rb->slots[S_EXT_WORD], 0)) {
        char *w = group_dup(a, 1, NULL);
        for (size_t i = 0; w && i < sizeof ext_words / sizeof ext_words[0]; i++)
            if (strcasecmp(w, ext_words[i].word) == 0) set_str(a, &a->glob, agx_strdup(ext_words[i].glob));
        free(w);
    }
    extract_named_columns(a);
    /* rows or items by a named column's value, before the names are read as columns */
    if (!a->cmp_field && (a->csv_delim || a->json_array) && match_from(a, rb->slots[S_COL_CMP_NAMED], 0)) {
        char *name = group_dup(a, 1, NULL);
        row_filter(a, name ? column_index(a, name) : 0, 2, 3);
        free(name);
    }
    if (!a->cmp_field && !a->json_select && (a->csv_delim || a->json_array) && match_from(a, rb->slots[S_AGE_CMP], 0))
        row_filter(a, column_index(a, "age"), 1, 2);
    if (a->flag[F_JSON] || a->json_input) {
        if (match_from(a, rb->slots[S_JSON_KEY], 0)) {
            const int g = first_group(a, 4, &s, &e);
            char *k = group_dup(a, g, NULL);
            if (k) {
                strip_trailing_punct(k);
                if (!is_stopword(k) && strcasecmp(k, "json") != 0 && number_value(k) < 0 &&
                    strcasecmp(k, "last") != 0)
                    set_str(a, &a->json_key, agx_strdup(k[0] == '.' ? k + 1 : k));
                group(a, g, &s, &e);
                mark_used(a, s, e);
            }
            free(k);
        }
        bool of_item = false;
        long top = 0;
        const long extreme = a->json_key || !a->json_array ? 0 : extreme_column(a, &of_item, &top);
        if (extreme > 0) { /* "the highest age": [.[].age] | max; "the item with ...": max_by(.age) */
            set_str(a, &a->json_key, agx_strdup(a->col_names[extreme - 1]));
            a->json_extreme = flag_says(a, F_EXTREME, min_words) ? "min" : "max";
            a->json_one = of_item; /* the item, not its value */
            a->json_top = top;
        }
        const long key = a->json_key || !a->json_input ? 0 : named_column(a);
        if (key > 0) set_str(a, &a->json_key, agx_strdup(a->col_names[key - 1])); /* "the names", "sum the ages" */
        if (a->json_array && match_from(a, rb->slots[S_JSON_ITEMS], 0)) { /* "the first 3 items" */
            char *which = group_dup(a, 1, NULL), *n = group(a, 2, &s, &e) ? group_dup(a, 2, NULL) : NULL;
            const long v = n ? number_value(n) : 1;
            a->json_one = !n;
            if (which && v > 0) {
                if (strcasecmp(which, "last") == 0) a->json_last = v;
                else a->json_first = v;
                mark_match_used(a);
            }
            free(which);
            free(n);
        }
    }
    if (match_from(a, rb->slots[S_OWNER], 0)) {
        set_str(a, &a->find_user, group_dup(a, 1, NULL));
        mark_match_used(a);
    }
    if (match_from(a, rb->slots[S_TERM_CAPS_PAIR], 0)) {
        char *x = group_dup(a, 1, NULL), *y = group_dup(a, 2, NULL);
        bool ok = x && y;
        for (size_t c = 0; ok && c < sizeof caps_not_terms / sizeof caps_not_terms[0]; c++)
            ok = strcmp(x, caps_not_terms[c]) != 0 && strcmp(y, caps_not_terms[c]) != 0;
        if (ok) {
            a->term = agx_sprintf("%s|%s", x, y); /* [A-Z0-9_]: nothing to escape */
            if (!a->term) a->oom = true;
            a->term_regex = true;
            mark_match_used(a);
        }
        free(x);
        free(y);
    }
    if (!a->term && match_from(a, rb->slots[S_TERM_BOTH], 0)) { /* "both foo and bar": grep foo | grep bar */
        char *x = term_group(a, 1), *y = term_group(a, 2);
        if (x && y) {
            a->term = x;
            a->term2 = y;
            x = y = NULL;
            mark_match_used(a);
        }
        free(x);
        free(y);
    }
    if (!a->term && match_from(a, rb->slots[S_TERM_EXACT], 0)) { /* "lines that are exactly 'foo'" */
        bool quoted = false;
        char *t = group_dup(a, 1, &quoted);
        if (t && !quoted) strip_trailing_punct(t);
        if (t && *t && (quoted || (!is_stopword(t) && number_value(t) < 0))) {
            a->term = t;
            t = NULL;
            a->whole_line = true;
            a->invert = negated_before(a, pcre2_get_ovector_pointer(a->md)[0], 16); /* "do not match exactly" */
            mark_match_used(a);
        }
        free(t);
    }
    if (a->log_input) extract_log_filters(a);
    if (!a->term) extract_term(a);
    if (a->term && !a->term2 && !a->invert && match_from(a, rb->slots[S_BUT_NOT], 0) &&
        (a->term2 = term_group(a, 1)) != NULL) { /* "X but not Y" */
        a->term2_invert = true;
        mark_match_used(a);
    }
    /* "how many times does 'foo' appear": count the matches, not every line */
    if (a->term && a->flag[F_HOW_MANY_TIMES] && !a->invert) a->occurrences_of_term = a->flag[F_COUNT] = true;
    /* "where the third column is greater than 100" */
    if (!a->cmp_field && match_from(a, rb->slots[S_COL_CMP], 0)) {
        char *ord = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : group_dup(a, 2, NULL);
        row_filter(a, ord && strcasecmp(ord, "last") != 0 ? number_value(ord) : -1, 3, 4);
        free(ord);
    }
    /* sort key ("sort by the second column") before plain column extraction */
    if (match_from(a, rb->slots[S_SORT_KEY], 0)) {
        int g = group(a, 2, &s, &e) ? 2 : 3;
        char *k = group_dup(a, g, NULL);
        if (k) {
            a->sort_key = strcasecmp(k, "last") == 0 ? -1 : number_value(k);
            if (a->sort_key == -1 && strcasecmp(k, "last") != 0) a->sort_key = 0;
        }
        free(k);
        group(a, 1, &s, &e); /* only "by ... column": a file named before "by" stays visible */
        mark_used(a, s, e);
    }
    if (match_from(a, rb->slots[S_FIELDS_RANGE], 0)) {
        char *k = group_dup(a, 1, NULL);
        a->fields_upto = k ? number_value(k) : -1;
        free(k);
        mark_match_used(a); /* not head -n N */
    } else if (match_from(a, rb->slots[S_FIELDS_LIST], 0)) {
        for (int g = 1; g <= 2; g++) {
            char *k = group_dup(a, g, NULL);
            a->fields[g - 1] = k ? number_value(k) : -1;
            free(k);
        }
        mark_match_used(a);
    } else if (match_from(a, rb->slots[S_FIELD_ORD], 0)) {
        char *k = group(a, 1, &s, &e) ? group_dup(a, 1, NULL) : group_dup(a, 2, NULL);
        if (k) {
            if (strcasecmp(k, "last") == 0)
                a->field_last = true;
            else
                a->field = number_value(k) > 0 ? number_value(k) : 0;
        }
        free(k);
    } else if (match_from(a, rb->slots[S_FIELD_NUM], 0)) {
        char *k = group_dup(a, 1, NULL);
        if (k) a->field = number_value(k) > 0 ? number_value(k) : 0;
        free(k);
    } else if (a->csv_delim) {
        bool of_item = false;
        long top = 0;
        const long extreme = extreme_column(a, &of_item, &top);
        /* the row's other column may be named: "the name of the oldest person" */
        const long col = extreme && !of_item ? 0 : named_column(a);
        if (extreme && (of_item || top > 0)) { /* rows sorted by that column, the first one(s) */
            const bool min = flag_says(a, F_EXTREME, min_words);
            a->flag[F_EXTREME] = false;
            a->flag[F_SORT] = a->flag[F_NUMERIC] = true;
            a->flag[F_REVERSE] = !min;
            a->sort_key = extreme;
            a->first_n = top > 0 ? top : 1;
            if (!of_item) a->field = extreme; /* "the 3 highest ages": the values */
            else if (col > 0 && col != extreme) a->field = col;
        } else if (extreme) {
            a->field = extreme;
        } else if (col > 0) {
            a->field = col;
        }
    } /* else a web log's named fields: map_log_field, once the file operands are known */
    /* "the total age": a sum of a numeric column, not a count of rows */
    if (a->flag[F_COUNT] && flag_says(a, F_COUNT, total_words) && !a->flag[F_PER_ITEM] &&
        ((a->csv_delim && a->field > 0 && a->field <= (long)a->n_col_names && a->col_numeric[a->field - 1]) ||
         (a->json_array && a->json_key))) {
        a->flag[F_SUM] = true;
        a->flag[F_COUNT] = false;
    }
    if (match_from(a, rb->slots[S_CHARS_RANGE], 0)) { /* cut -c1-N, not head */
        char *k = group_dup(a, 1, NULL);
        const long n = k ? number_value(k) : 1; /* "the first character" */
        const bool bytes = group(a, 2, &s, &e) || group(a, 3, &s, &e);
        free(k);
        mark_match_used(a);
        /* "the first 64 bytes" of a file are its first bytes (head -c), not of each line */
        if (bytes && !match_from(a, rb->slots[S_PER_LINE], 0)) a->head_bytes = n;
        else a->chars_upto = n;
    }
    /* "the 20 most recent lines" is the end of the input, not "the 20 most ..." */
    a->last_n = slot_number(a, S_LAST_N2, 1);
    if (a->last_n > 0) {
        mark_match_used(a);
    }
    long n = slot_number(a, S_FIRST_N, 1);
    if (n < 0) n = slot_number(a, S_MOST_N, 1);
    if (n < 0) n = slot_number(a, S_SUPER_N, 1); /* "the largest 5 files" */
    if (n < 0) n = slot_number(a, S_N_LINES, 1);
    /* "show 3 lines before X" keeps no number of lines: grep -B 3 */
    if (n > 0 && !a->context_before && !a->context_after) a->first_n = n; /* else -1, or 1 for "the row with ..." */
    if (a->last_n < 0) a->last_n = slot_number(a, S_LAST_N, 1);
    /* files by time are listed newest first (oldest first for "oldest"): the
     * latest N are at the top, not the bottom */
    if (a->last_n > 0 && a->first_n < 0 && a->flag[F_BY_TIME] && a->flag[F_FILES]) {
        a->first_n = a->last_n;
        a->last_n = -1;
    }
    if (a->first_n < 0 && a->last_n < 0 && a->from_line <= 0 && a->drop_last <= 0 && a->from_end <= 0) {
        if (a->flag[F_FIRST_LINE] && !a->flag[F_SKIP_HEADER]) a->first_n = 1;
        else if (a->flag[F_WHICH_MOST]) a->first_n = 1; /* "which IP made the most requests" */
        else if (a->flag[F_ONE_FILE]) a->first_n = 1;   /* "the newest file" */
        else if (a->flag[F_ONE_LINE]) a->first_n = 1;   /* "the longest line" */
        else if (a->flag[F_SHOW_HEADER]) a->first_n = 1; /* "show the header of data.csv" */
        else if (a->flag[F_LAST_LINE]) a->last_n = 1;
    }
    extract_paths(a);
    if (!a->dir) {
        for (int id = S_DIR_UNDER; id <= S_DIR_IN_WORD && !a->dir; id++) {
            size_t from = 0;
            while (!a->dir && match_from(a, rb->slots[id], from)) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(a->md);
                from = ov[0] + 1;
                char *d = group_dup(a, 1, NULL);
                if (!d) break;
                strip_trailing_punct(d);
                size_t dl = strlen(d);
                if (dl > 1 && d[dl - 1] == '/') d[dl - 1] = '\0';
                bool ok = !is_stopword(d) && !looks_like_file(d) && !strpbrk(d, "*?") &&
                          !is_not_dir(d) &&
                          /* "under 100 bytes" is a quantity; "in the directory 2024" a name */
                          !(id != S_DIR_IN && id != S_DIR_NAMED && number_value(d) > 0);
                if (ok && id == S_DIR_IN_WORD && a->csv_delim && !a->term && !strchr(d, '/')) {
                    a->term = d; /* piped rows "in paris": a value to look for, not a directory */
                    break;
                }
                if (ok) {
                    a->dir = operand(d);
                    a->dir_by_in_word = id == S_DIR_IN_WORD;
                } else
                    free(d);
            }
        }
    }
}

/* ----------------------------------------------------------------- compose */

static step *add_step(analysis *a, const char *tool) {
    if (a->n_steps >= MAX_STEPS) {
        a->oom = true; /* cannot happen with these tables; treated as failure */
        return NULL;
    }
    step *st = &a->steps[a->n_steps++];
    st->tool = tool;
    st->n_args = 0;
    return st;
}

static void arg(analysis *a, step *st, const char *value) {
    if (!st || !value) {
        if (!value) a->oom = true;
        return;
    }
    if (st->n_args >= MAX_ARGS) return;
    char *v = agx_strdup(value);
    if (!v) {
        a->oom = true;
        return;
    }
    st->args[st->n_args++] = v;
}

static void argf(analysis *a, step *st, char *owned) {
    arg(a, st, owned);
    free(owned);
}

/* The tests of a find step from the instruction: owner, size, age. */
static void find_predicates(analysis *a, step *st) {
    if (a->glob_not) {
        arg(a, st, "-not");
        arg(a, st, "-name");
        arg(a, st, a->glob_not);
    }
    if (a->exclude_dir) { /* anything below a directory of that name */
        arg(a, st, "-not");
        arg(a, st, "-path");
        argf(a, st, agx_sprintf("*/%s/*", a->exclude_dir));
        a->exclude_used = true;
    }
    if (a->find_newer) {
        if (a->find_older) arg(a, st, "-not");
        arg(a, st, "-newer");
        arg(a, st, a->find_newer);
    }
    if (a->find_user) {
        arg(a, st, "-user");
        arg(a, st, a->find_user);
    }
    if (a->find_size) {
        arg(a, st, "-size");
        arg(a, st, a->find_size);
    }
    if (a->find_time) {
        if (a->find_daystart) arg(a, st, "-daystart"); /* days counted from midnight, not from now */
        arg(a, st, a->find_time_flag);
        arg(a, st, a->find_time);
    }
}

/* find DIR -type f [-name GLOB] and the tests above: the files a pipeline reads. */
static step *find_files(analysis *a, const char *glob) {
    step *st = add_step(a, "find");
    arg(a, st, a->dir ? a->dir : ".");
    arg(a, st, "-type");
    arg(a, st, "f");
    if (glob) {
        arg(a, st, "-name");
        arg(a, st, glob);
    }
    find_predicates(a, st);
    return st;
}

/* xargs -d '\n': one file name per input line, so names with spaces stay whole. */
static step *xargs_lines(analysis *a) {
    step *st = add_step(a, "xargs");
    arg(a, st, "-d");
    arg(a, st, "\\n");
    return st;
}

/* The checksum of each file named on an input line; -r: no files, no checksum of an empty stdin. */
static step *checksum_each_file(analysis *a) {
    step *st = xargs_lines(a);
    arg(a, st, "-r");
    arg(a, st, a->checksum_tool);
    return st;
}

/* awk, splitting at the input's delimiter when it has one. */
static step *awk_step(analysis *a, char delim) {
    step *st = add_step(a, "awk");
    if (delim == '\t') arg(a, st, "-F\t");
    else if (delim) argf(a, st, agx_sprintf("-F%c", delim));
    return st;
}

/* An awk /regex/ for a search word: literal unless it is a regex already, '/' escaped. */
static void awk_regex(agx_strbuf *sb, const char *word, bool is_regex) {
    char *x = is_regex ? agx_strdup(word) : ere_escape(word);
    agx_strbuf_putc(sb, '/');
    for (const char *c = x; c && *c; c++) {
        if (*c == '/') agx_strbuf_putc(sb, '\\');
        agx_strbuf_putc(sb, *c);
    }
    agx_strbuf_putc(sb, '/');
    free(x);
}

static bool takes_files(const char *tool) {
    for (size_t i = 0; i < sizeof file_readers / sizeof file_readers[0]; i++)
        if (strcmp(tool, file_readers[i]) == 0) return true;
    return false;
}

static const char *count_flag(const analysis *a) {
    if (a->flag[F_WORDS]) return "-w";
    if (a->flag[F_CHARS]) return "-m";
    if (a->flag[F_BYTES]) return "-c";
    return "-l";
}

/* sort, by the key column when one is named (-t: the rows' separator); fold: ignoring case. */
static step *sort_rows(analysis *a, char delim, bool fold) {
    const bool *f = a->flag;
    step *st = add_step(a, "sort");
    if (f[F_NUMERIC] || f[F_REVERSE] || fold)
        argf(a, st, agx_sprintf("-%s%s%s", fold ? "f" : "", f[F_NUMERIC] ? "n" : "", f[F_REVERSE] ? "r" : ""));
    if (a->sort_key > 0) argf(a, st, agx_sprintf("-k%ld", a->sort_key));
    if (delim && a->sort_key > 0) argf(a, st, agx_sprintf("-t%c", delim));
    return st;
}

/* The separator of the rows read: named, read off a CSV header, or a .csv / .tsv file's. */
static char input_delim(const analysis *a) {
    const bool *f = a->flag;
    char delim = f[F_CSV] ? ',' : f[F_TSV] ? '\t' : f[F_COLON] ? ':' : a->csv_delim;
    for (size_t i = 0; !delim && i < a->n_files; i++) {
        size_t l = strlen(a->files[i]);
        if (l > 4 && strcasecmp(a->files[i] + l - 4, ".csv") == 0) delim = ',';
        if (l > 4 && strcasecmp(a->files[i] + l - 4, ".tsv") == 0) delim = '\t';
    }
    return delim;
}

/* File operands go to the first step that reads files, else to a leading cat. */
static void attach_files(analysis *a) {
    if (a->n_files == 0 || a->n_steps == 0) return;
    if (!takes_files(a->steps[0].tool)) {
        if (a->n_steps >= MAX_STEPS) {
            a->oom = true;
            return;
        }
        memmove(&a->steps[1], &a->steps[0], a->n_steps * sizeof a->steps[0]);
        a->n_steps++;
        a->steps[0].tool = "cat";
        a->steps[0].n_args = 0;
    }
    for (size_t i = 0; i < a->n_files; i++) arg(a, &a->steps[0], a->files[i]);
}

/* Plans over a whole table (piped CSV / TSV with a header, or a JSON array) that no
 * pipeline stage builds: the number of columns, a format conversion, an aggregate per
 * group, items grouped, JSON on one line. False when the instruction asks none of them. */
static bool compose_table(analysis *a, char delim) {
    const bool *f = a->flag;
    if (a->term) return false;
    char sep[3] = {delim, '\0', '\0'}; /* the separator as awk -v and jq strings write it */
    if (delim == '\t') strcpy(sep, "\\t");
    if (f[F_COUNT_COLS] && a->json_array) {
        arg(a, add_step(a, "jq"), ".[0] | length");
    } else if (f[F_COUNT_COLS]) { /* the fields of the first line */
        step *st = add_step(a, "head");
        arg(a, st, "-n");
        arg(a, st, "1");
        arg(a, awk_step(a, delim), "{print NF}");
    } else if (f[F_TO_JSON] && delim && !a->json_input) {
        /* the header's names as keys, numbers as numbers */
        step *st = add_step(a, "jq");
        arg(a, st, "-Rn");
        argf(a, st, agx_sprintf("(input | split(\"%s\")) as $h | [inputs | select(length > 0) | split(\"%s\") | "
                                "[$h, .] | transpose | map({(.[0]): (.[1] | tonumber? // .)}) | add]", sep, sep));
    } else if ((f[F_TO_CSV] || f[F_TO_TSV]) && a->json_array) { /* the first item's keys as the header */
        step *st = add_step(a, "jq");
        arg(a, st, "-r");
        argf(a, st, agx_sprintf("(.[0] | keys_unsorted) as $k | $k, (.[] | [.[$k[]]]) | @%s", f[F_TO_CSV] ? "csv" : "tsv"));
    } else if (a->agg && a->json_array) {
        const char *k = a->col_names[a->agg_by - 1], *v = a->col_names[a->agg_col - 1];
        argf(a, add_step(a, "jq"), agx_sprintf("group_by(.%s) | map({%s: .[0].%s, %s: (map(.%s) | %s)})", k, k, k, v, v,
                                                a->agg->jq));
    } else if (a->agg) { /* awk: one total per group, printed in the input's format */
        if (a->csv_delim) {
            step *st = add_step(a, "tail");
            arg(a, st, "-n");
            arg(a, st, "+2");
        }
        step *st = awk_step(a, delim);
        if (delim) argf(a, st, agx_sprintf("-vOFS=%s", sep));
        const long c = a->agg_col, k = a->agg_by;
        argf(a, st, agx_sprintf(a->agg->awk, k, c, k, k, c)); /* the formats take what they need, in order */
        add_step(a, "sort"); /* awk's "for in" has no order */
    } else if (a->json_array && a->json_key && f[F_PER_ITEM] && !f[F_COUNT] &&
               flag_says(a, F_PER_ITEM, (const char *const[]){"group", "grouped", NULL})) {
        argf(a, add_step(a, "jq"), agx_sprintf("group_by(.%s)", a->json_key));
    } else if (f[F_MINIFY] && a->json_input) {
        step *st = add_step(a, "jq");
        arg(a, st, "-c");
        arg(a, st, ".");
    } else {
        return false;
    }
    return true;
}

/* Checksums of files found in a tree, or of the files named one per input line ("find
 * duplicate files": the files whose checksums repeat, in groups). */
static void compose_checksums(analysis *a) {
    if (!a->piped) find_files(a, a->glob);
    checksum_each_file(a);
    if (a->flag[F_DUP_FILES]) { /* the checksum is the first 32 (md5) or 64 (sha256) characters */
        add_step(a, "sort");
        step *st = add_step(a, "uniq");
        arg(a, st, strcmp(a->checksum_tool, "md5sum") == 0 ? "-w32" : "-w64");
        arg(a, st, "--all-repeated=separate");
    }
}

static void compose_pipeline(analysis *a, char delim) {
    const bool *f = a->flag;
    if (a->seq_set && !a->piped && a->n_files == 0) { /* the numbers are the input of what follows */
        step *st = add_step(a, "seq");
        if (a->seq[0] != 1 || a->seq[1] != 1) argf(a, st, agx_sprintf("%ld", a->seq[0]));
        if (a->seq[1] != 1) argf(a, st, agx_sprintf("%ld", a->seq[1]));
        argf(a, st, agx_sprintf("%ld", a->seq[2]));
        a->piped = true;
    }
    if (a->checksum_tool && a->n_files == 0 && !a->term &&
        (!a->piped || f[F_DUP_FILES] || f[F_PER_FILE])) { /* piped: a list of files */
        compose_checksums(a);
        return;
    }
    bool per_file = f[F_PER_FILE] && (f[F_COUNT] || a->term);
    /* pipelines of their own: directory sizes (du), files per extension, lines ranked by length */
    const bool du = (f[F_DU] || f[F_RANKED_DIRS] || (f[F_TOTAL_SIZE] && !a->glob && !a->log_input)) &&
                    a->n_files == 0 && !a->piped && !a->term;
    const bool per_ext = (f[F_PER_EXT] || f[F_EXTENSIONS]) && !du && a->n_files == 0 && !a->piped && !a->term;
    /* "the total size of all .log files": find -printf '%s\\n' | awk sum */
    const bool total_size = f[F_TOTAL_SIZE] && !du && a->n_files == 0 && !a->piped && !a->term && !a->log_input;
    /* two files named: "which lines differ between a and b", "lines common to a and b" */
    const bool two_files = a->n_files == 2 && !a->term && (f[F_DIFF] || f[F_COMMON] || f[F_ONLY_IN]);
    /* the N longest lines, or all of them sorted by length */
    const bool ranked_lines = (f[F_RANKED_LINES] || f[F_SORT_LENGTH]) && !du && !per_ext;
    /* "which file has the most lines": wc per file, ranked */
    const bool ranked_files = f[F_RANKED_FILES] && f[F_FILES] && a->n_files == 0 &&
                              !a->piped && !a->term && !du && !per_ext;
    /* "count the .js files in each directory": the directory of every file found, counted */
    const bool per_dir = f[F_PER_DIR] && f[F_COUNT] && f[F_FILES] && a->n_files == 0 && !a->piped && !a->term &&
                         !du && !per_ext && !ranked_files;
    /* a JSON key's values are counted per value only when a count is asked for ("count items per name"; not
     * "the name of each item") */
    bool per_item = f[F_PER_ITEM] && !per_file && !a->occurrences_of_term &&
                    (!a->json_key || f[F_COUNT]) && !(a->json_input && f[F_EACH_ITEM]) && !du && !per_ext &&
                    !ranked_lines && !ranked_files && !f[F_EVERY_OTHER] && !per_dir;
    bool source_find = false, source_grep = false, files_used = false, ls_sorted = false;
    /* a header line is not data: skipped wherever lines are sorted, counted, summed or picked by column */
    const bool skip_header = f[F_SKIP_HEADER] ||
                             (a->csv_delim && !f[F_SHOW_HEADER] && !a->term /* grep drops it */ &&
                              (a->field > 0 || a->sort_key > 0 || a->cmp_field > 0 || per_item || f[F_SORT] ||
                               f[F_SUM] || f[F_AVERAGE] || f[F_UNIQUE] || f[F_COUNT] || f[F_DUPS] || a->row_cond));

    /* source */
    if (a->join_files && a->n_files == 2 && !a->piped) { /* both files sorted on the key, as join needs */
        step *st = add_step(a, "join");
        if (delim) argf(a, st, agx_sprintf("-t%c", delim));
        if (a->join_key > 1) argf(a, st, agx_sprintf("-j%ld", a->join_key));
        arg(a, st, a->files[0]);
        arg(a, st, a->files[1]);
        files_used = true;
    } else if (two_files) {
        step *st = add_step(a, f[F_COMMON] || f[F_ONLY_IN] ? "grep" : "diff");
        if (f[F_ONLY_IN]) { /* the lines of the first that are no line of the second */
            arg(a, st, "-vxFf");
            arg(a, st, a->files[1]);
            arg(a, st, a->files[0]);
        } else {
            if (f[F_COMMON]) { /* the lines of the second that are lines of the first */
                arg(a, st, "-Fxf");
            } else { /* diff, ignoring case / whitespace / blank lines as asked */
                char flags[8];
                size_t k = 0;
                flags[k++] = '-';
                if (f[F_CASE]) flags[k++] = 'i';
                if (f[F_IGNORE_SPACE]) flags[k++] = 'w';
                if (f[F_IGNORE_BLANK_LINES]) flags[k++] = 'B';
                flags[k] = '\0';
                if (k > 1) arg(a, st, flags);
            }
            arg(a, st, a->files[0]);
            arg(a, st, a->files[1]);
        }
        files_used = true;
    } else if (a->term && a->context_only && (a->piped || a->n_files == 1) && !a->invert) {
        /* "the line after each match of X": that line alone (grep -A 1 would print the match too) */
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        const bool regex = a->term_regex || f[F_REGEX];
        if (a->context_after) { /* f: the previous line matched */
            agx_strbuf_puts(&sb, "f {print} {f = ");
            awk_regex(&sb, a->term, regex);
            agx_strbuf_puts(&sb, "}");
        } else {
            agx_strbuf_puts(&sb, "NR > 1 && ");
            awk_regex(&sb, a->term, regex);
            agx_strbuf_puts(&sb, " {print prev} {prev = $0}");
        }
        argf(a, add_step(a, "awk"), agx_strbuf_take(&sb));
    } else if (a->term) {
        /* nothing to read: a search looks through the tree; a filter ("remove lines
         * containing X") only does so when a directory or glob says where */
        bool recursive = a->n_files == 0 && !a->piped && (!a->invert || a->dir || a->glob);
        bool list = f[F_FILES_WITH] && recursive;
        bool counting = (f[F_COUNT] && !per_item) || per_file || per_item;
        char flags[12];
        size_t k = 0;
        flags[k++] = '-';
        if (recursive) flags[k++] = 'r';
        bool only_match = a->occurrences_of_term || a->named_regex;
        if (list) flags[k++] = 'l';
        else if (recursive && only_match) flags[k++] = 'h'; /* the matches, not file:match */
        else if ((recursive || f[F_LINE_NUMBERS]) && !counting) flags[k++] = 'n';
        if (a->invert) flags[k++] = 'v';
        if (f[F_CASE]) flags[k++] = 'i';
        if (a->whole_line) flags[k++] = 'x';
        else if (f[F_WHOLE_WORD]) flags[k++] = 'w';
        if (only_match && !list) flags[k++] = 'o';
        if (a->term_regex || f[F_REGEX]) flags[k++] = 'E';
        flags[k] = '\0';
        step *st = add_step(a, "grep");
        if (k > 1) arg(a, st, flags);
        if (recursive && a->glob) argf(a, st, agx_sprintf("--include=%s", a->glob));
        if (recursive && a->glob2) argf(a, st, agx_sprintf("--include=%s", a->glob2));
        if (recursive && a->exclude_dir) {
            argf(a, st, agx_sprintf("--exclude-dir=%s", a->exclude_dir));
            a->exclude_used = true;
        }
        if (!list && !counting && (a->context_before || a->context_after)) { /* -C N, or one side */
            const bool same = a->context_before == a->context_after;
            arg(a, st, same ? "-C" : a->context_after ? "-A" : "-B");
            argf(a, st, agx_sprintf("%ld", a->context_after ? a->context_after : a->context_before));
        }
        if (a->term[0] == '-') arg(a, st, "-e");
        arg(a, st, a->term);
        if (recursive) arg(a, st, a->dir ? a->dir : ".");
        for (size_t i = 0; i < a->n_files; i++) arg(a, st, a->files[i]);
        source_grep = files_used = true;
        if (a->term2) { /* "both X and Y": the lines (files) with X, then those with Y among them */
            if (list) { /* the files listed by grep -l: each searched again (-L: those without) */
                st = xargs_lines(a);
                arg(a, st, "grep");
                arg(a, st, a->term2_invert ? "-L" : "-l");
            } else {
                st = add_step(a, "grep");
                if (a->term2_invert) arg(a, st, "-v");
            }
            if (f[F_CASE]) arg(a, st, "-i");
            if (a->term2[0] == '-') arg(a, st, "-e");
            arg(a, st, a->term2);
        }
    } else if ((a->longer_than > 0 || a->shorter_than > 0) && a->n_files == 0 && !a->piped &&
               (a->dir || a->glob)) {
        /* long lines anywhere in a tree: grep prints where they are */
        step *st = add_step(a, "grep");
        arg(a, st, "-rnE");
        if (a->glob) argf(a, st, agx_sprintf("--include=%s", a->glob));
        argf(a, st, a->longer_than > 0 ? agx_sprintf(".{%ld,}", a->longer_than + 1)
                                       : agx_sprintf("^.{0,%ld}$", a->shorter_than - 1));
        arg(a, st, a->dir ? a->dir : ".");
        source_grep = files_used = true;
        a->longer_than = a->shorter_than = 0; /* done: no awk filter below */
    } else if (ranked_files) {
        find_files(a, a->glob);
        step *st = xargs_lines(a);
        arg(a, st, "wc");
        arg(a, st, f[F_WORDS] ? "-w" : "-l");
        st = add_step(a, "grep"); /* wc's own sum is not a file */
        arg(a, st, "-v");
        arg(a, st, " total$");
        arg(a, add_step(a, "sort"), flag_says(a, F_RANKED_FILES, small_words) ? "-n" : "-rn");
        if (a->first_n <= 0 && a->last_n <= 0) a->first_n = 10;
        ls_sorted = true;
    } else if (du) {
        /* one line per subdirectory (du -d 1), largest first, or the one total (du -s) */
        const bool each = f[F_DU_EACH] || f[F_RANKED_DIRS] || a->first_n > 0;
        step *st = add_step(a, "du");
        arg(a, st, each ? "-h" : "-sh");
        if (each) {
            arg(a, st, "-d");
            arg(a, st, "1");
        }
        arg(a, st, a->dir ? a->dir : ".");
        if (each) arg(a, add_step(a, "sort"), flag_says(a, F_RANKED_DIRS, small_words) ? "-h" : "-rh");
        if (f[F_RANKED_DIRS] && a->first_n <= 0 && a->last_n <= 0) a->first_n = 10;
        ls_sorted = true;
    } else if (per_ext) {
        /* the extension of every file that has one, counted */
        find_files(a, "*.*");
        arg(a, add_step(a, "sed"), "s/.*\\.//");
        add_step(a, "sort");
        if (f[F_PER_EXT] || f[F_COUNT]) {
            arg(a, add_step(a, "uniq"), "-c");
            arg(a, add_step(a, "sort"), f[F_LEAST] ? "-n" : "-rn");
        } else {
            add_step(a, "uniq"); /* "the unique extensions" */
        }
        ls_sorted = true;
    } else if (a->n_files == 0 && !a->piped && (f[F_LARGEST] || f[F_SMALLEST])) {
        /* size and path of every file ("modified in the last week" too), biggest (or smallest) first */
        step *st = find_files(a, a->glob);
        arg(a, st, "-printf");
        arg(a, st, "%s %p\\n");
        arg(a, add_step(a, "sort"), f[F_LARGEST] ? "-rn" : "-n");
        if (a->first_n <= 0 && a->last_n <= 0) a->first_n = 10;
        ls_sorted = true;
    } else if (a->n_files == 0 && !a->piped &&
               (a->glob || f[F_COUNT_FILES] || f[F_EMPTY_FILES] ||
                (f[F_PER_FILE] && f[F_COUNT] && !a->term) || (f[F_TYPE_FILES] && !f[F_LIST]) ||
                (f[F_LOC] && !a->term) || per_dir || total_size || (f[F_NO_EXT] && f[F_FILES]) ||
                f[F_HIDDEN_FILES] || f[F_EXECUTABLES] ||
                ((a->find_size || a->find_time || a->find_user || a->find_newer || a->glob_not) && f[F_FILES]) ||
                (a->exclude_dir && f[F_FILES] && !a->term) || f[F_SYMLINKS] ||
                f[F_BROKEN_LINKS] || (f[F_DIRS] && (f[F_LIST] || f[F_COUNT] || f[F_TYPE_FILES])))) {
        step *st = add_step(a, "find");
        arg(a, st, a->dir ? a->dir : ".");
        if (a->glob && a->glob2) { /* ( -name A -o -name B ) */
            const char *alt[] = {"(", "-name", a->glob, "-o", "-name", a->glob2, ")"};
            for (size_t i = 0; i < sizeof alt / sizeof alt[0]; i++) arg(a, st, alt[i]);
        } else if (a->glob) {
            arg(a, st, "-name");
            arg(a, st, a->glob);
        }
        bool dirs = f[F_DIRS] || f[F_EMPTY_DIRS] || a->named_dir;
        if (f[F_BROKEN_LINKS] || f[F_SYMLINKS]) { /* -xtype l: a link whose target is missing */
            arg(a, st, f[F_BROKEN_LINKS] ? "-xtype" : "-type");
            arg(a, st, "l");
        } else if (dirs || !a->glob) {
            arg(a, st, "-type");
            arg(a, st, dirs ? "d" : "f");
        }
        if (f[F_EMPTY_FILES]) arg(a, st, "-empty");
        if (f[F_NO_EXT]) { /* no dot in the name */
            arg(a, st, "-not");
            arg(a, st, "-name");
            arg(a, st, "*.*");
        }
        if (f[F_EXECUTABLES]) arg(a, st, "-executable");
        if (f[F_HIDDEN_FILES] && !a->glob) {
            arg(a, st, "-name");
            arg(a, st, ".*");
        }
        find_predicates(a, st);
        source_find = true;
        if (total_size) { /* the sizes of the files found, summed */
            arg(a, st, "-printf");
            arg(a, st, "%s\\n");
            arg(a, add_step(a, "awk"), "{s += $1} END {print s}");
        } else if (per_dir) {
            arg(a, st, "-printf");
            arg(a, st, "%h\\n");
            add_step(a, "sort");
            arg(a, add_step(a, "uniq"), "-c");
            arg(a, add_step(a, "sort"), "-rn");
            ls_sorted = true;
        } else if (f[F_CONTENTS_EACH] && !f[F_COUNT]) { /* "show the contents of every .conf file" */
            arg(a, xargs_lines(a), "cat");
        } else if (!f[F_COUNT] && (f[F_BY_SIZE] ? !f[F_PER_FILE] : f[F_FILE_SIZES])) {
            /* "... and their sizes", "sorted by size": size and path */
            arg(a, st, "-printf");
            arg(a, st, "%s %p\\n");
            if (f[F_BY_SIZE]) {
                arg(a, add_step(a, "sort"), f[F_REVERSE] || f[F_LARGE_FIRST] ? "-rn" : "-n");
                ls_sorted = true;
            }
        }
    } else if (f[F_FILE_SIZES] && a->n_files > 0) {
        arg(a, add_step(a, "wc"), "-c"); /* the files attach below: one byte count each */
    } else if (f[F_PERMS] && !a->piped && !a->term && (a->n_files > 0 || a->dir)) {
        step *st = add_step(a, "ls"); /* -d: a directory's own mode, not its entries'; files attach below */
        arg(a, st, "-ld");
        if (a->n_files == 0) arg(a, st, a->dir);
    } else if ((f[F_LIST] || f[F_FILE_SIZES] || ((f[F_BY_TIME] || f[F_BY_SIZE]) && f[F_FILES])) &&
               a->n_files == 0 && !a->piped) {
        step *st = add_step(a, "ls");
        char flags[8];
        size_t k = 0;
        flags[k++] = '-';
        if ((f[F_LONG] || f[F_FILE_SIZES]) && !(f[F_BY_SIZE] && a->first_n > 0)) flags[k++] = 'l';
        if (f[F_HIDDEN]) flags[k++] = 'a';
        if (f[F_RECURSIVE]) flags[k++] = 'R';
        if (f[F_BY_SIZE]) flags[k++] = 'S';
        else if (f[F_BY_TIME]) flags[k++] = 't';
        /* -S and -t list the largest / newest first: "largest first" is their own order */
        const bool sorted_by = f[F_BY_SIZE] || f[F_BY_TIME];
        if ((f[F_REVERSE] && !(sorted_by && f[F_LARGE_FIRST])) || (sorted_by && (f[F_OLDEST] || f[F_SMALL_FIRST])))
            flags[k++] = 'r';
        flags[k] = '\0';
        if (k > 1) arg(a, st, flags);
        if (a->dir) arg(a, st, a->dir);
        ls_sorted = f[F_BY_SIZE] || f[F_BY_TIME]; /* ls did the sorting */
    }

    if (a->base64 == 'd') arg(a, add_step(a, "base64"), "-d"); /* the text is what the rest reads */

    /* json: a key (of every element when the input is an array), keys, length, pretty */
    bool json = f[F_JSON] || a->json_input, json_counted = false, json_summed = false;
    if (a->drop_items && (a->from_line > 0 || a->drop_last > 0)) { /* items dropped from an end */
        const long from = a->from_line > 0 ? a->from_line - 1 : 0;
        if (a->drop_last > 0) argf(a, add_step(a, "jq"), agx_sprintf(".[%ld:-%ld]", from, a->drop_last));
        else if (a->first_n > 0) argf(a, add_step(a, "jq"), agx_sprintf(".[%ld:%ld]", from, from + a->first_n));
        else argf(a, add_step(a, "jq"), agx_sprintf(".[%ld:]", from));
        a->from_line = a->drop_last = a->first_n = a->last_n = -1;
    } else if (a->json_select) { /* items by a key's value: whole items, their number, or one key of each */
        step *st = add_step(a, "jq");
        if (a->json_key) arg(a, st, "-r");
        json_counted = !a->json_key && f[F_COUNT];
        argf(a, st, a->json_key    ? agx_sprintf(".[] | select(%s) | .%s", a->json_select, a->json_key)
                    : json_counted ? agx_sprintf("map(select(%s)) | length", a->json_select)
                                   : agx_sprintf("map(select(%s))", a->json_select));
    } else if (a->json_extreme && a->json_top > 0) { /* "the 2 oldest items", "the 3 highest ages" */
        const char *rev = strcmp(a->json_extreme, "max") ? "" : " | reverse";
        argf(a, add_step(a, "jq"), a->json_one ? agx_sprintf("sort_by(.%s)%s | .[:%ld]", a->json_key, rev, a->json_top)
                                               : agx_sprintf("[.[].%s] | sort%s | .[:%ld]", a->json_key, rev, a->json_top));
        json_summed = true;
        a->first_n = -1;
    } else if (a->json_extreme) {
        argf(a, add_step(a, "jq"), a->json_one ? agx_sprintf("%s_by(.%s)", a->json_extreme, a->json_key)
                                               : agx_sprintf("[.[].%s] | %s", a->json_key, a->json_extreme));
        json_summed = true;
    } else if (a->json_first > 0 || a->json_last > 0) { /* whole items: a slice of the array */
        argf(a, add_step(a, "jq"), a->json_one            ? agx_sprintf("%s%s", a->json_first > 0 ? ".[0]" : ".[-1]",
                                                                        f[F_KEYS] ? " | keys" : "")
                                   : a->json_first > 0 ? agx_sprintf(".[:%ld]", a->json_first)
                                                       : agx_sprintf(".[-%ld:]", a->json_last));
        a->first_n = a->last_n = -1;
    } else if (a->json_pick[0] > 0) { /* two keys of each item, as objects */
        argf(a, add_step(a, "jq"), agx_sprintf("map({%s, %s})", a->col_names[a->json_pick[0] - 1],
                                                a->col_names[a->json_pick[1] - 1]));
    } else if (a->drop_col > 0 && a->json_array && a->drop_col <= (long)a->n_col_names) {
        argf(a, add_step(a, "jq"), agx_sprintf("map(del(.%s))", a->col_names[a->drop_col - 1]));
    } else if (a->json_sort_key) { /* the items sorted by a key, or another key of each in that order */
        step *st = add_step(a, "jq");
        if (a->json_key) arg(a, st, "-r");
        argf(a, st, agx_sprintf("sort_by(.%s)%s%s%s", a->json_sort_key, f[F_REVERSE] ? " | reverse" : "",
                                a->json_key ? " | .[]." : "", a->json_key ? a->json_key : ""));
        ls_sorted = true;
    } else if (a->json_key && a->json_array && (f[F_SUM] || f[F_AVERAGE])) {
        /* summing and averaging stay in jq: the values are JSON, not lines */
        argf(a, add_step(a, "jq"), f[F_SUM] ? agx_sprintf("[.[].%s] | add", a->json_key)
                                            : agx_sprintf("[.[].%s] | add / length", a->json_key));
        json_summed = true;
    } else if (a->json_key) {
        step *st = add_step(a, "jq");
        arg(a, st, "-r");
        argf(a, st, agx_sprintf("%s.%s", a->json_array || f[F_EACH_ITEM] ? ".[]" : "", a->json_key));
    } else if (json && f[F_COUNT] && !f[F_LINES] && !f[F_WORDS] && !f[F_CHARS] && !f[F_BYTES] &&
               !f[F_FILES] && !a->term && !per_item) {
        arg(a, add_step(a, "jq"), "length");
        json_counted = true;
    } else if (f[F_KEYS] && (f[F_JSON] || a->json_input)) { /* an array's keys are its items' */
        arg(a, add_step(a, "jq"), a->json_array ? "map(keys) | add | unique" : "keys");
    } else if (f[F_PRETTY] && (f[F_JSON] || a->json_input)) {
        arg(a, add_step(a, "jq"), ".");
    }

    /* filter */
    if (skip_header) {
        step *st = add_step(a, "tail");
        arg(a, st, "-n");
        arg(a, st, "+2");
    }
    if (a->between[0]) { /* awk '/START/,/END/': the words literal, '/' escaped for awk */
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        awk_regex(&sb, a->between[0], false);
        agx_strbuf_putc(&sb, ',');
        awk_regex(&sb, a->between[1], false);
        argf(a, add_step(a, "awk"), agx_strbuf_take(&sb));
    }
    if (a->after_word) { /* f: the word was seen; 'b' stops at it */
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        if (a->after_side == 'a') agx_strbuf_puts(&sb, "f; ");
        awk_regex(&sb, a->after_word, false);
        agx_strbuf_puts(&sb, a->after_side == 'b' ? " {exit} {print}" : a->after_side == 'f' ? " {f = 1} f" : " {f = 1}");
        argf(a, add_step(a, "awk"), agx_strbuf_take(&sb));
    }
    if (a->nf_op) argf(a, awk_step(a, delim), agx_sprintf("NF %s %ld", a->nf_op, a->nf_value));
    /* after whitespace is stripped, a line of spaces is blank too */
    if (f[F_BLANK]) arg(a, add_step(a, "sed"), f[F_TRAILING_WS] || f[F_LEADING_WS] ? "/^[[:space:]]*$/d" : "/^$/d");
    if (f[F_NO_COMMENTS]) { /* lines that are comments in shell, ini or C-like files */
        step *st = add_step(a, "grep");
        arg(a, st, "-vE");
        arg(a, st, "^[[:space:]]*(#|;|//)");
    }
    if (a->cmp_field > 0) /* rows by a column's value */
        argf(a, awk_step(a, delim), agx_sprintf("$%ld %s %s", a->cmp_field, a->cmp_op, a->cmp_value));
    if (a->row_cond) arg(a, awk_step(a, delim), a->row_cond); /* ... or its text */
    if (a->every_nth > 0) argf(a, add_step(a, "awk"), agx_sprintf("NR %% %ld == 0", a->every_nth));
    if (f[F_EVERY_OTHER])
        arg(a, add_step(a, "awk"), flag_says(a, F_EVERY_OTHER, (const char *const[]){"even", NULL}) ? "NR % 2 == 0"
                                                                                                   : "NR % 2 == 1");
    if (a->longer_than > 0 || a->shorter_than > 0)
        argf(a, add_step(a, "awk"),
             a->longer_than > 0 ? agx_sprintf("length($0) > %ld", a->longer_than)
                                : agx_sprintf("length($0) < %ld", a->shorter_than));

    if (a->chars_upto > 0) argf(a, add_step(a, "cut"), a->chars_upto == 1 ? agx_strdup("-c1")
                                                                           : agx_sprintf("-c1-%ld", a->chars_upto));
    if (a->last_chars > 0)
        argf(a, add_step(a, "awk"), a->last_chars == 1 ? agx_strdup("{print substr($0, length($0))}")
                                                        : agx_sprintf("{print substr($0, length($0) - %ld)}",
                                                                      a->last_chars - 1));
    bool line_length = f[F_LINE_LENGTH] && a->chars_upto <= 0 && a->last_chars <= 0 && !ranked_lines;
    if (line_length) arg(a, add_step(a, "awk"), "{print length($0)}");
    const bool words_per_line = f[F_WORDS_PER_LINE] && !line_length && !ranked_lines;
    if (words_per_line) arg(a, add_step(a, "awk"), "{print NF}");
    if (ranked_lines) { /* each line behind its length, longest (shortest) first; cut drops the length */
        arg(a, add_step(a, "awk"), "{print length($0) \"\\t\" $0}");
        /* "sort by length": shortest first unless reversed */
        const bool longest_first = f[F_RANKED_LINES] ? !flag_says(a, F_RANKED_LINES, small_words) : f[F_REVERSE];
        arg(a, add_step(a, "sort"), longest_first ? "-rn" : "-n");
        if (f[F_RANKED_LINES] && a->first_n <= 0 && a->last_n <= 0) a->first_n = 10;
        ls_sorted = true;
    }
    /* sum, average, maximum or minimum of a column (awk), else extract it */
    if ((f[F_SUM] || f[F_AVERAGE] || f[F_EXTREME]) && !source_find && !json_summed) {
        const char *col = a->field_last ? "$NF" : NULL;
        char colbuf[32];
        if (!col) {
            snprintf(colbuf, sizeof colbuf, "$%ld", a->field > 0 ? a->field : 1);
            col = colbuf;
        }
        const bool min = flag_says(a, F_EXTREME, min_words);
        argf(a, awk_step(a, delim),
             f[F_AVERAGE] ? agx_sprintf("{s += %s; n++} END {if (n) print s / n}", col)
             : f[F_SUM]   ? agx_sprintf("{s += %s} END {print s}", col)
                          : agx_sprintf("NR == 1 || %s %s m {m = %s} END {print m}", col, min ? "<" : ">", col));
    } else if (a->drop_col > 0 && !a->json_array && !source_find) { /* every column but one (JSON: jq del) */
        if (delim) {
            step *st = add_step(a, "cut");
            if (delim != '\t') argf(a, st, agx_sprintf("-d%c", delim));
            arg(a, st, "--complement");
            argf(a, st, agx_sprintf("-f%ld", a->drop_col));
        } else { /* the later fields moved down one, the line rebuilt */
            argf(a, add_step(a, "awk"), agx_sprintf("NF >= %ld {for (i = %ld; i < NF; i++) $i = $(i + 1); NF--} {print}",
                                                    a->drop_col, a->drop_col));
        }
    } else if ((a->fields_upto > 0 || a->fields[0] > 0) && !source_find) {
        /* rows sorted by a column before the columns are cut out ("the name and city, by age") */
        if (delim && a->sort_key > 0 && !ls_sorted) {
            sort_rows(a, delim, false);
            ls_sorted = true;
        }
        long upto = a->fields_upto > 20 ? 20 : a->fields_upto;
        if (delim) {
            step *st = add_step(a, "cut");
            if (delim != '\t') argf(a, st, agx_sprintf("-d%c", delim));
            argf(a, st, upto > 0 ? agx_sprintf("-f1-%ld", upto)
                                 : agx_sprintf("-f%ld,%ld", a->fields[0], a->fields[1]));
        } else {
            agx_strbuf sb;
            agx_strbuf_init(&sb);
            agx_strbuf_puts(&sb, "{print ");
            if (upto > 0)
                for (long i = 1; i <= upto; i++) agx_strbuf_printf(&sb, "%s$%ld", i > 1 ? ", " : "", i);
            else
                agx_strbuf_printf(&sb, "$%ld, $%ld", a->fields[0], a->fields[1]);
            agx_strbuf_putc(&sb, '}');
            argf(a, add_step(a, "awk"), agx_strbuf_take(&sb));
        }
    } else if ((a->field > 0 || a->field_last) && !source_find) {
        if (delim && a->sort_key > 0 && !ls_sorted) { /* "the names sorted by age": sorted, then cut */
            sort_rows(a, delim, false);
            ls_sorted = true;
        }
        if (delim) {
            step *st = add_step(a, "cut");
            if (delim != '\t') argf(a, st, agx_sprintf("-d%c", delim));
            argf(a, st, a->field_last ? agx_strdup("-f1") : agx_sprintf("-f%ld", a->field));
        } else {
            char col[24];
            snprintf(col, sizeof col, a->field_last ? "$NF" : "$%ld", a->field);
            step *prev = a->n_steps > 0 ? &a->steps[a->n_steps - 1] : NULL;
            if (prev && a->row_cond && !a->field_quoted && !strcmp(prev->tool, "awk") && prev->n_args == 1 &&
                !strcmp(prev->args[0], a->row_cond)) {
                /* the awk just before keeps rows by a condition: it prints their field too
                 * ("which paths returned 500": awk '$9 == 500 {print $7}') */
                char *both = agx_sprintf("%s {print %s}", a->row_cond, col);
                if (both) {
                    free(prev->args[0]);
                    prev->args[0] = both;
                } else {
                    a->oom = true;
                }
            } else {
                step *st = add_step(a, "awk");
                if (a->field_quoted) arg(a, st, "-F\"");
                argf(a, st, agx_sprintf("{print %s}", col));
            }
        }
    } else if (a->log_time_len > 0 && !source_find) {
        argf(a, add_step(a, "awk"), agx_sprintf("{print substr($4, 2, %d)}", a->log_time_len));
    }

    /* one word per line, so that words can be counted or deduplicated */
    if (f[F_WORDS] && (per_item || f[F_UNIQUE] || f[F_DUPS] || f[F_SINGLES])) {
        step *st = add_step(a, "tr");
        arg(a, st, "-s");
        arg(a, st, "[:space:]");
        arg(a, st, "\\n");
    }

    /* transform */
    if (f[F_TRAILING_WS]) arg(a, add_step(a, "sed"), "s/[[:space:]]*$//");
    if (f[F_LEADING_WS]) arg(a, add_step(a, "sed"), "s/^[[:space:]]*//");
    if (f[F_SQUEEZE]) {
        step *st = add_step(a, "tr");
        arg(a, st, "-s");
        arg(a, st, " ");
    }
    if (a->delete_set) {
        step *st = add_step(a, "tr");
        arg(a, st, "-d");
        arg(a, st, a->delete_set);
    }
    if (a->capitalize) /* GNU sed: \U upper-cases the rest of the match, \u one letter */
        arg(a, add_step(a, "sed"), a->capitalize == 'l' ? "s/^[[:lower:]]/\\U&/" : "s/\\b[[:lower:]]/\\u&/g");
    if (a->swap[0] > 0) { /* two fields exchanged, the line rebuilt with the input's separator */
        step *st = awk_step(a, delim);
        if (delim) argf(a, st, agx_sprintf("-vOFS=%c", delim));
        /* lines too short to have both fields pass unchanged */
        argf(a, st, agx_sprintf("NF >= %ld {t = $%ld; $%ld = $%ld; $%ld = t} {print}",
                                a->swap[0] > a->swap[1] ? a->swap[0] : a->swap[1], a->swap[0], a->swap[0], a->swap[1],
                                a->swap[1]));
    }
    if (f[F_UPPER] || f[F_LOWER]) {
        step *st = add_step(a, "tr");
        arg(a, st, f[F_UPPER] ? "[:lower:]" : "[:upper:]");
        arg(a, st, f[F_UPPER] ? "[:upper:]" : "[:lower:]");
    }
    if (a->replace_from && a->replace_to && char_name(a->replace_from) && char_name(a->replace_to)) {
        step *st = add_step(a, "tr");
        arg(a, st, char_name(a->replace_from));
        arg(a, st, char_name(a->replace_to));
    } else if (a->replace_from && a->replace_to) {
        agx_strbuf sb;
        agx_strbuf_init(&sb);
        agx_strbuf_puts(&sb, "s/");
        if (a->replace_class) agx_strbuf_printf(&sb, "%s/", a->replace_class); /* a regex already */
        const char *parts[2] = {a->replace_from, a->replace_to};
        for (int p = a->replace_class ? 1 : 0; p < 2; p++) {
            for (const char *c = parts[p]; *c; c++) {
                if (*c == '/' || *c == '\\' || (p == 1 && *c == '&')) agx_strbuf_putc(&sb, '\\');
                agx_strbuf_putc(&sb, *c);
            }
            agx_strbuf_putc(&sb, '/');
        }
        agx_strbuf_putc(&sb, 'g');
        argf(a, add_step(a, "sed"), agx_strbuf_take(&sb));
    }

    if (a->wrap_width > 0) { /* at spaces where it can */
        step *st = add_step(a, "fold");
        arg(a, st, "-s");
        arg(a, st, "-w");
        argf(a, st, agx_sprintf("%ld", a->wrap_width));
    }

    /* aggregate */
    if (f[F_SINGLES] && !per_file) { /* the lines that occur once */
        add_step(a, "sort");
        arg(a, add_step(a, "uniq"), "-u");
    } else if (per_file && source_grep) {
        step *st = add_step(a, "cut");
        arg(a, st, "-d:");
        arg(a, st, "-f1");
        add_step(a, "sort");
        arg(a, add_step(a, "uniq"), "-c");
        arg(a, add_step(a, "sort"), "-rn");
    } else if (a->log_time_len > 0 && (per_item || f[F_COUNT])) {
        add_step(a, "sort"); /* uniq needs its input sorted (the plan normalizer insists); not by count */
        arg(a, add_step(a, "uniq"), "-c");
    } else if (per_item) {
        add_step(a, "sort");
        arg(a, add_step(a, "uniq"), "-c");
        arg(a, add_step(a, "sort"), f[F_LEAST] ? "-n" : "-rn");
    } else if (f[F_DUPS] && !f[F_UNIQUE]) {
        add_step(a, "sort");
        arg(a, add_step(a, "uniq"), "-d");
    } else if (f[F_UNIQUE] && f[F_KEEP_ORDER] && !f[F_SORT] && !a->sort_key && !ls_sorted &&
               !(source_find && f[F_COUNT])) {
        /* "remove duplicate lines without sorting": the first of each line, where it stands */
        const bool fold = f[F_CASE] && !a->term;
        arg(a, add_step(a, "awk"), fold ? "!seen[tolower($0)]++" : "!seen[$0]++");
    } else if (!ls_sorted && !(source_find && f[F_COUNT]) && (f[F_UNIQUE] || f[F_SORT] || a->sort_key)) {
        /* "ignoring case" is for the sort itself when nothing is searched for */
        const bool fold = f[F_CASE] && !a->term && !f[F_NUMERIC];
        step *st = sort_rows(a, delim, fold);
        if (f[F_UNIQUE]) {
            st = add_step(a, "uniq");
            if (fold) arg(a, st, "-i");
        }
    }

    /* limit: lines dropped from the ends first, then the lines kept */
    if (a->from_line > 0) {
        step *st = add_step(a, "tail");
        arg(a, st, "-n");
        argf(a, st, agx_sprintf("+%ld", a->from_line));
    }
    if (a->drop_last > 0) {
        step *st = add_step(a, "head");
        arg(a, st, "-n");
        argf(a, st, agx_sprintf("-%ld", a->drop_last));
    }
    if (a->from_end > 0) {
        step *st = add_step(a, "tail");
        arg(a, st, "-n");
        argf(a, st, agx_sprintf("%ld", a->from_end));
        st = add_step(a, "head");
        arg(a, st, "-n");
        arg(a, st, "1");
    } else if (a->line_from > 0) {
        step *st = add_step(a, "sed");
        if (!a->line_delete) arg(a, st, "-n");
        const char op = a->line_delete ? 'd' : 'p';
        argf(a, st, a->line_from == a->line_to ? agx_sprintf("%ld%c", a->line_from, op)
                                               : agx_sprintf("%ld,%ld%c", a->line_from, a->line_to, op));
    } else if (f[F_FIRST_AND_LAST]) {
        step *st = add_step(a, "sed");
        arg(a, st, "-n");
        arg(a, st, "1p;$p");
    } else if (a->head_bytes > 0) {
        step *st = add_step(a, "head");
        arg(a, st, "-c");
        argf(a, st, agx_sprintf("%ld", a->head_bytes));
    } else if (a->first_n > 0 || a->last_n > 0) {
        step *st = add_step(a, a->first_n > 0 ? "head" : "tail");
        arg(a, st, "-n");
        argf(a, st, agx_sprintf("%ld", a->first_n > 0 ? a->first_n : a->last_n));
    }
    if (ranked_lines) arg(a, add_step(a, "cut"), "-f2-");
    if (a->join_with) {
        /* paste cycles through its -d characters, so a longer separator is awk's */
        const char *sep = a->join_with;
        if ((strlen(sep) == 1 && *sep != '\\') || strcmp(sep, "\\t") == 0) {
            step *st = add_step(a, "paste");
            arg(a, st, "-s");
            arg(a, st, "-d");
            arg(a, st, sep);
        } else {
            agx_strbuf sb; /* awk -v reads escapes: a backslash stands for itself doubled */
            agx_strbuf_init(&sb);
            agx_strbuf_puts(&sb, "sep=");
            for (const char *c = sep; *c; c++) {
                if (*c == '\\') agx_strbuf_putc(&sb, '\\');
                agx_strbuf_putc(&sb, *c);
            }
            step *st = add_step(a, "awk");
            arg(a, st, "-v");
            argf(a, st, agx_strbuf_take(&sb));
            arg(a, st, "NR > 1 {printf \"%s\", sep} {printf \"%s\", $0} END {print \"\"}");
        }
    }

    /* what is left, shuffled ("3 random lines of the first 100": head, then shuf -n 3), or as
     * a whole: its checksum, base64, a dump of its bytes */
    if (a->random_n > 0 || a->shuffle) {
        step *st = add_step(a, "shuf");
        if (a->random_n > 0) {
            arg(a, st, "-n");
            argf(a, st, agx_sprintf("%ld", a->random_n));
        }
    }
    if (a->checksum_tool && source_grep && f[F_FILES_WITH]) checksum_each_file(a); /* the files grep -l listed */
    else if (a->checksum_tool) add_step(a, a->checksum_tool);
    if (a->base64 == 'e') add_step(a, "base64");
    if (a->dump) { /* offsets in hex; -v: repeated lines shown, not '*' */
        static const char *const dump_args[2][5] = {{"-A", "x", "-t", "x1z", "-v"}, {"-A", "o", "-t", "o1", "-v"}};
        step *st = add_step(a, "od");
        for (size_t i = 0; i < 5; i++) arg(a, st, dump_args[a->dump == 'o'][i]);
    }

    /* numbered last, so the numbers are those of the lines shown ("show main.c with line numbers":
     * cat -n main.c); a search numbers the lines it finds (grep -n) */
    if (a->number_nonempty) add_step(a, "nl");
    else if (f[F_LINE_NUMBERS] && !source_grep && !source_find) arg(a, add_step(a, "cat"), "-n");

    /* count */
    if (f[F_COUNT] && !per_item && !per_file && !per_ext && !per_dir && !ranked_files && !a->log_time_len &&
        !f[F_SUM] && !f[F_AVERAGE] && !json_counted && !line_length && !words_per_line && !total_size && !two_files) {
        if (source_find && (f[F_LINES] || f[F_WORDS] || f[F_CHARS] || f[F_BYTES]) && !f[F_COUNT_FILES]) {
            step *st = xargs_lines(a);
            arg(a, st, "wc");
            arg(a, st, count_flag(a));
        } else if (source_find || source_grep) {
            arg(a, add_step(a, "wc"), a->occurrences_of_term || f[F_FILES_WITH] || source_find ||
                                              !(f[F_WORDS] || f[F_CHARS] || f[F_BYTES])
                                          ? "-l"
                                          : count_flag(a));
        } else {
            arg(a, add_step(a, "wc"), count_flag(a));
        }
    } else if (f[F_COUNT] && per_file && !source_grep && !ranked_files) {
        /* "count lines per file": wc prints one count per operand */
        if (source_find) {
            step *st = xargs_lines(a);
            arg(a, st, "wc");
            arg(a, st, count_flag(a));
        } else {
            arg(a, add_step(a, "wc"), count_flag(a));
        }
    }

    /* "count the lines in every file under src and sort by count": the counts sorted */
    if (source_find && f[F_COUNT] && f[F_SORT] && !ls_sorted) arg(a, add_step(a, "sort"), f[F_REVERSE] ? "-rn" : "-n");

    /* plain "show access.log" */
    if (a->n_steps == 0 && a->n_files > 0 && f[F_SHOW]) add_step(a, "cat");

    if (!files_used && !source_find) attach_files(a);
}

static void compose(analysis *a) {
    const char delim = input_delim(a);
    if (compose_table(a, delim)) attach_files(a);
    else compose_pipeline(a, delim);
}

/* --------------------------------------------------- registry-pattern path */

/* Matches a registry pattern ("first N lines") against the instruction word by
 * word; "N" matches any number. Returns the pattern's length in words, 0 if absent. */
static size_t pattern_match(const char *instr, const char *pattern) {
    char iw[64][32], pw[16][32];
    size_t ni = 0, np = 0;
    const char *srcs[2] = {instr, pattern};
    for (int which = 0; which < 2; which++) {
        const char *p = srcs[which];
        size_t *n = which ? &np : &ni;
        size_t cap = which ? 16 : 64;
        while (*p && *n < cap) {
            while (*p && !isalnum((unsigned char)*p)) p++;
            size_t k = 0;
            char *dst = which ? pw[*n] : iw[*n];
            while (*p && isalnum((unsigned char)*p)) {
                if (k < 31) dst[k++] = (char)tolower((unsigned char)*p);
                p++;
            }
            dst[k] = '\0';
            if (k) (*n)++;
        }
    }
    if (np == 0 || np > ni) return 0;
    for (size_t i = 0; i + np <= ni; i++) {
        size_t j = 0;
        for (; j < np; j++) {
            bool num = strcmp(pw[j], "n") == 0 && isdigit((unsigned char)iw[i + j][0]);
            if (!num && strcmp(pw[j], iw[i + j]) != 0) break;
        }
        if (j == np) return np;
    }
    return 0;
}

/* Tools that do nothing useful without a program or pattern argument: the
 * pattern path only uses them when the instruction quotes that argument. */
static const char *const needs_program[] = {"awk", "sed", "grep", "cut", "tr", "join", "xargs", "seq"};

static void compose_from_registry(analysis *a, const agx_registry *reg) {
    const agx_tool *best = NULL;
    size_t best_len = 0;
    for (size_t t = 0; t < reg->count; t++) {
        /* uniq's second operand is its output file, and the phrase tables already
         * cover every use of it ("unique", "duplicates", "count occurrences") */
        bool skip = strcmp(reg->tools[t].id, "uniq") == 0;
        for (size_t k = 0; k < sizeof needs_program / sizeof needs_program[0]; k++)
            skip |= a->n_quoted == 0 && strcmp(reg->tools[t].id, needs_program[k]) == 0;
        if (skip) continue;
        for (size_t p = 0; p < reg->tools[t].n_patterns; p++) {
            size_t l = pattern_match(a->text, reg->tools[t].patterns[p]);
            if (l > best_len) {
                best_len = l;
                best = &reg->tools[t];
            }
        }
    }
    /* the verb "find" alone, with nothing quoted or named to look for, would list
     * every file: that answers no question ("find aliases in .bashrc") */
    if (!best || (best_len == 1 && strcmp(best->id, "find") == 0 && a->n_quoted == 0 && a->n_files == 0)) return;
    step *st = add_step(a, best->id);
    for (size_t i = 0; i < a->n_quoted; i++) {
        /* quoted text is data: never let it become an option of the tool */
        if (a->text[a->quoted[i].start + 1] == '-') continue;
        argf(a, st, agx_strndup(a->text + a->quoted[i].start + 1, a->quoted[i].end - a->quoted[i].start - 2));
    }
    for (size_t i = 0; i < a->n_files; i++) arg(a, st, a->files[i]);
}

/* ------------------------------------------------------------- the backend */

static void analysis_clear_steps(analysis *a) {
    for (size_t i = 0; i < a->n_steps; i++)
        for (size_t j = 0; j < a->steps[i].n_args; j++) free(a->steps[i].args[j]);
    a->n_steps = 0;
}

static void analysis_free(analysis *a) {
    free(a->unsupported);
    free(a->term);
    free(a->term2);
    for (size_t i = 0; i < a->n_col_names; i++) free(a->col_names[i]);
    for (size_t i = 0; i < a->n_files; i++) free(a->files[i]);
    free(a->dir);
    free(a->glob);
    free(a->glob2);
    free(a->replace_from);
    free(a->replace_to);
    free(a->join_with);
    free(a->after_word);
    free(a->json_select);
    free(a->glob_not);
    free(a->exclude_dir);
    free(a->find_newer);
    free(a->between[0]);
    free(a->between[1]);
    free(a->json_key);
    free(a->json_sort_key);
    free(a->row_cond);
    free(a->find_size);
    free(a->find_user);
    free(a->cmp_value);
    free(a->find_time_flag);
    free(a->find_time);
    analysis_clear_steps(a);
    if (a->md) pcre2_match_data_free(a->md);
}

/* Some step has an argument equal to value. */
static bool step_uses(const analysis *a, const char *value) {
    for (size_t i = 0; i < a->n_steps; i++)
        for (size_t k = 0; k < a->steps[i].n_args; k++)
            if (strcmp(a->steps[i].args[k], value) == 0) return true;
    return false;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF): plan
 * arguments must be valid UTF-8, and they are copied from the instruction. */

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/* Some word names a web server's access log ("access.log", "/var/log/nginx/access_log.1"). */
static bool names_access_log(const char *text) {
    for (const char *w = text; *w;) {
        const size_t n = strcspn(w, " \t\n");
        const char *hit = NULL;
        for (const char *p = w; p + 6 <= w + n && !hit; p++)
            if (!strncasecmp(p, "access", 6)) hit = p + 6;
        for (const char *p = hit; p && p + 4 <= w + n; p++)
            if (!strncasecmp(p, ".log", 4) || !strncasecmp(p, "_log", 4)) return true;
        w += n;
        while (*w == ' ' || *w == '\t' || *w == '\n') w++;
    }
    return false;
}

static agx_status decline(const char *instruction, agx_error *err, const char *why) {
    int n = (int)strlen(instruction);
    return agx_error_set(err, AGX_ERR_PARSE,
                         "no tool matches '%.*s%s'%s; try an instruction like \"show the first 10 "
                         "lines\", \"count lines containing 'ERROR'\", \"find files named '*.c'\" or "
                         "\"count occurrences of each line\", or configure a model "
                         "(AGX_ECHO_MODEL=/path/model.gguf, or AGX_BACKEND=ollama|openai) for "
                         "free-form instructions",
                         n > 160 ? 160 : n, instruction, n > 160 ? "..." : "", why ? why : "");
}

static agx_status rules_generate(agx_backend *b, const char *instruction, const agx_plan_context *ctx,
                                 agx_generated_plan *out, agx_error *err) {
    const rules_backend *rb = (const rules_backend *)b;
    const char *given = instruction;
    bool again_without_input = false;
    int64_t t0 = agx_time_ms();
    agx_generated_plan_init(out);
    if (!instruction || !*instruction)
        return agx_error_set(err, AGX_ERR_USAGE, "the instruction is empty; say what to do, e.g. "
                                                 "\"show the first 10 lines\"");
    size_t len = strlen(instruction);
    if (len > 4096)
        return agx_error_set(err, AGX_ERR_PARSE, "the instruction is %zu bytes long; the rules "
                                                 "planner reads at most 4096", len);
    if (!valid_utf8((const unsigned char *)instruction, len))
        return agx_error_set(err, AGX_ERR_PARSE, "the instruction is not valid UTF-8; the rules "
                                                 "planner reads UTF-8 text");
    /* control characters separate words; none of them may reach a plan argument */
    char *text = agx_strndup(instruction, len);
    if (!text) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    for (char *p = text; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
    instruction = text;
    analysis a;
    memset(&a, 0, sizeof a);
    a.rb = rb;
    a.text = instruction;
    a.len = len;
    a.first_n = a.last_n = -1;
    a.md = pcre2_match_data_create(16, NULL);
    if (!a.md) {
        free(text);
        return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    }
    const agx_input_summary *in = ctx ? ctx->input : NULL;
    a.piped = in && in->bytes > 0;
    if (a.piped && in->excerpt) {
        const char *ex = in->excerpt;
        while (isspace((unsigned char)*ex)) ex++;
        a.json_input = *ex == '{' || *ex == '[';
        a.json_array = *ex == '[';
        a.log_input = pcre2_match(rb->log_line, (PCRE2_SPTR)in->excerpt, strlen(in->excerpt), 0, 0,
                                  a.md, NULL) >= 0;
        if (a.json_input) read_json_keys(&a, in->excerpt);
        else if (!a.log_input) read_csv_header(&a, in->excerpt);
    }
    /* a web log is known from the piped input or from a file named like "access.log" */
    a.log_input = a.log_input || names_access_log(instruction);
    find_quotes(&a);
    for (int i = 0; i < F_NFLAGS; i++)
        if ((a.flag[i] = match_from(&a, rb->flags[i], 0))) a.flag_at[i] = pcre2_get_ovector_pointer(a.md)[0];
    if (a.flag[F_LOC]) a.flag[F_COUNT] = a.flag[F_LINES] = true; /* "lines of code": a line count of files */
    if (a.flag[F_DIFF] && a.flag[F_IGNORE_BLANK_LINES]) a.flag[F_BLANK] = false; /* diff -B, not sed '/^$/d' */
    if (a.flag[F_RANKED_NUMBERS]) {
        a.flag[F_SORT] = a.flag[F_NUMERIC] = true;
        a.flag[F_REVERSE] = !flag_says(&a, F_RANKED_NUMBERS, (const char *const[]){"smallest", "lowest", NULL});
    }
    agx_status s = AGX_OK;
    /* "delete build/": declined before "build/" can be read as a term ("remove X" filters lines) */
    const bool deletes = a.flag[F_DELETE_PATH] && match_from(&a, rb->flags[F_DELETE_PATH], 0);
    if (!deletes) extract_slots(&a);
    /* "each" or "every" inside words another phrase took ("every third line", "replace every
     * number", "the line after each match") asks for no count per item */
    if (a.flag[F_PER_ITEM] && (a.flag[F_PER_ITEM] = match_from(&a, rb->flags[F_PER_ITEM], 0)))
        a.flag_at[F_PER_ITEM] = pcre2_get_ovector_pointer(a.md)[0]; /* flag_says reads the match left */
    /* re-checked after extraction: a search term ("lines containing curl") is not an action */
    if (deletes || match_from(&a, rb->flags[F_UNSUPPORTED], 0)) {
        char *w = group_dup(&a, 1, NULL);
        char why[128];
        snprintf(why, sizeof why, " (the rules planner cannot '%s')", w ? w : "?");
        free(w);
        s = decline(instruction, err, why);
        goto done;
    }
    if (a.cannot[0]) {
        s = decline(instruction, err, a.cannot);
        goto done;
    }
    for (size_t i = 0; i < a.n_files; i++) {
        size_t l = strlen(a.files[i]);
        if (l > 5 && strcasecmp(a.files[i] + l - 5, ".json") == 0) a.json_input = true;
    }
    if (a.log_input && !a.field && !a.field_last) map_log_field(&a);
    if ((a.dir && a.dir[0] == '~') || a.flag[F_HOME]) {
        /* a plan runs without a shell: nothing expands '~' or $HOME in its arguments */
        s = decline(instruction, err, " (plans run without a shell, so '~' and $HOME are not expanded: name the "
                                      "directory itself, e.g. /home/you)");
        goto done;
    }
    if (!a.oom) compose(&a);
    const char *missing = NULL; /* a tool the phrase tables chose that the registry lacks */
    bool from_registry = false; /* planned from the registry's patterns with the user's quoted args */
    for (size_t i = 0; ctx && ctx->registry && i < a.n_steps && !missing; i++)
        if (!agx_registry_find(ctx->registry, a.steps[i].tool)) missing = a.steps[i].tool;
    if (!a.oom && (a.n_steps == 0 || missing) && ctx && ctx->registry) {
        analysis_clear_steps(&a);
        compose_from_registry(&a, ctx->registry);
        if (a.n_steps) missing = NULL;
        from_registry = a.n_steps > 0;
    }
    if (a.oom) {
        s = agx_error_set(err, AGX_ERR_NOMEM, "out of memory planning '%.80s'", instruction);
        goto done;
    }

    size_t max_tasks = ctx && ctx->max_tasks ? ctx->max_tasks : 20;
    if (a.n_steps > max_tasks) {
        s = agx_error_set(err, AGX_ERR_PARSE, "the plan for '%.80s' needs %zu steps, more than the "
                                              "limit of %zu", instruction, a.n_steps, max_tasks);
        goto done;
    }
    if (missing) {
        s = decline(instruction, err, NULL);
        agx_error_prefix(err, "the rules planner needs '%s', which is not in the tool registry", missing);
        goto done;
    }
    if (a.n_steps == 0) {
        s = decline(instruction, err, NULL);
        goto done;
    }
    if (a.exclude_dir && !a.exclude_used) {
        char why[200];
        snprintf(why, sizeof why, " (it leaves out the directory '%.100s', which the plan the rules found cannot "
                                  "leave out)", a.exclude_dir);
        s = decline(instruction, err, why);
        goto done;
    }
    if (a.dir && !from_registry && !step_uses(&a, a.dir)) {
        if (a.piped && ctx && ctx->input &&
            (!a.dir_by_in_word || a.flag[F_FILES] || a.flag[F_FILES_WITH] || a.flag[F_DIRS] || a.flag[F_RECURSIVE])) {
            /* "which files in src mention malloc" with data piped in: the directory named is
             * what to read, so the instruction is planned again as if nothing were piped (a
             * bare "in WORD" may be a value of the piped data: "people in paris" stays declined) */
            again_without_input = true;
            goto done;
        }
        /* a plan that ignores where the user said to look answers another question */
        char why[200];
        snprintf(why, sizeof why, " (it names the directory '%.100s', which the plan the rules found does not use)",
                 a.dir);
        s = decline(instruction, err, why);
        goto done;
    }
    for (size_t i = 0; i < a.n_steps; i++) {
        s = agx_plan_add_task(&out->plan, a.steps[i].tool, (const char *const *)a.steps[i].args,
                              a.steps[i].n_args, i == 0 ? 0 : (int)i, err);
        if (s != AGX_OK) goto done;
    }
    if (ctx && ctx->registry) {
        /* zero trust in itself too: a plan the validator refuses is declined, not returned */
        agx_plan_limits limits = agx_plan_limits_default();
        limits.max_tasks = max_tasks;
        agx_error verr;
        if (agx_plan_validate(&out->plan, ctx->registry, &limits, NULL, &verr) != AGX_OK) {
            if (from_registry) /* the user's own arguments were refused */
                s = agx_error_set(err, AGX_ERR_PARSE, "the arguments given for '%s' are not allowed in a "
                                                      "plan (%s)", a.steps[0].tool, verr.message);
            else
                s = agx_error_set(err, AGX_ERR_PARSE, "the rules planner could not build a valid plan "
                                                      "for '%.120s' (%s); rephrase it or configure a model",
                                  instruction, verr.message);
            goto done;
        }
    }
    out->meta.model = agx_strdup("rules");
    out->meta.backend = agx_strdup("rules");
    if (!out->meta.model || !out->meta.backend) s = agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    out->meta.latency_ms = agx_time_ms() - t0;
done:
    analysis_free(&a);
    free(text);
    if (again_without_input) {
        agx_plan_context without_input = *ctx;
        without_input.input = NULL;
        return rules_generate(b, given, &without_input, out, err);
    }
    if (s != AGX_OK) {
        agx_generated_plan_free(out);
        agx_generated_plan_init(out);
    }
    return s;
}

static const char *rules_type(const agx_backend *b) {
    (void)b;
    return "rules";
}

static agx_status rules_health(agx_backend *b, agx_error *err) {
    (void)b;
    (void)err;
    return AGX_OK; /* offline and compiled at creation: always ready */
}

static void rules_destroy(agx_backend *b) {
    rules_backend *rb = (rules_backend *)b;
    if (!rb) return;
    for (int i = 0; i < F_NFLAGS; i++) pcre2_code_free(rb->flags[i]);
    for (int i = 0; i < S_NSLOTS; i++) pcre2_code_free(rb->slots[i]);
    pcre2_code_free(rb->log_line);
    for (size_t i = 0; i < N_NAMED_PATTERNS; i++) pcre2_code_free(rb->named[i]);
    free(rb);
}

static const agx_backend_ops rules_ops = {
    .generate_plan = rules_generate,
    .backend_type = rules_type,
    .model_name = rules_type,
    .health_check = rules_health,
    .destroy = rules_destroy,
};

static pcre2_code *compile(const char *pattern, agx_error *err) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_CASELESS, &code,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        agx_error_set(err, AGX_ERR_ENGINE, "rules planner phrase table: bad regex at offset %zu: %s",
                      (size_t)off, (const char *)msg);
    }
    return re;
}

agx_status agx_backend_rules_create(const agx_planner_config *cfg, agx_backend **out, agx_error *err) {
    (void)cfg;
    *out = NULL;
    rules_backend *rb = calloc(1, sizeof *rb);
    if (!rb) return agx_error_set(err, AGX_ERR_NOMEM, "out of memory");
    rb->base.ops = &rules_ops;
    bool ok = true;
    for (int i = 0; i < F_NFLAGS && ok; i++) ok = (rb->flags[i] = compile(flag_regex[i], err)) != NULL;
    for (int i = 0; i < S_NSLOTS && ok; i++) ok = (rb->slots[i] = compile(slot_regex[i], err)) != NULL;
    if (ok) ok = (rb->log_line = compile("^\\S+ \\S+ \\S+ \\[[^\\]]+\\] \"", err)) != NULL;
    for (size_t i = 0; i < N_NAMED_PATTERNS && ok; i++)
        ok = (rb->named[i] = compile(named_patterns[i].phrase, err)) != NULL;
    if (!ok) {
        rules_destroy(&rb->base);
        return err ? err->code : AGX_ERR_ENGINE;
    }
    *out = &rb->base;
    return AGX_OK;
}
