/* test_rules.c — the offline rules planner: exact plans for everyday
 * instructions (with and without piped input), registry-pattern fallback,
 * clear declines, determinism and limits. */
#include "agx_test.h"

#include <stdlib.h>
#include <string.h>

#include "agx/agx.h"

static const char access_excerpt[] =
    "192.168.1.10 - - [10/Oct/2023:13:55:36 +0000] \"GET /index.html HTTP/1.1\" 200 2326\n"
    "10.0.0.7 - - [10/Oct/2023:13:55:40 +0000] \"GET /about HTTP/1.1\" 404 512\n";

typedef struct {
    const char *instruction;
    const char *piped; /* excerpt of piped input, NULL = nothing piped */
    const char *expected; /* "cmd [arg] [arg] | cmd ..." every task fed by the previous */
} rules_case;

static const char people_csv[] = "name,age,city\nbob,31,paris\nann,25,rome\n";
static const char people_tsv[] = "name\tage\tcity\nbob\t31\tparis\n";
static const char numbers_csv[] = "3,1,2\n4,5,6\n"; /* no header: nothing is named */
static const char combined_log[] =
    "10.0.0.7 - - [10/Oct/2023:13:55:40 +0000] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"\n";

static const char two_lines[] = "alpha beta\ngamma\n";
static const char cities_json[] = "[{\"name\": \"a\", \"age\": 3, \"city\": \"x\"}, {\"name\": \"b\", \"age\": 5, \"city\": \"y\"}]\n";
static const char users_json[] = "[{\"name\": \"a\", \"age\": 3}, {\"name\": \"b\", \"age\": 5}]\n";

static const rules_case cases[] = {
    {"find all TODO comments under src and count them per file", NULL,
     "grep [-r] [TODO] [src] | cut [-d:] [-f1] | sort | uniq [-c] | sort [-rn]"},
    {"show the first 20 lines", "a\nb\n", "head [-n] [20]"},
    {"show the last 5 lines of app.log", NULL, "tail [-n] [5] [app.log]"},
    {"show the first ten lines of README.md", NULL, "head [-n] [10] [README.md]"},
    {"count lines in access.log", NULL, "wc [-l] [access.log]"},
    {"find files named *.rs", NULL, "find [.] [-name] [*.rs]"},
    {"find all python files under scripts", NULL, "find [scripts] [-name] [*.py]"},
    {"sort numerically in reverse", "3\n1\n2\n", "sort [-nr]"},
    {"list files in src", NULL, "ls [src]"},
    {"list all files including hidden ones with details", NULL, "ls [-la]"},
    {"lines containing ERROR in app.log", NULL, "grep [ERROR] [app.log]"},
    {"show lines matching 'warn' case-insensitive", "x\n", "grep [-i] [warn]"},
    {"lines not containing DEBUG", "x\n", "grep [-v] [DEBUG]"},
    {"count occurrences of each line", "x\n", "sort | uniq [-c] | sort [-rn]"},
    {"remove duplicate lines", "x\n", "sort | uniq"},
    {"count unique lines in names.txt", NULL, "sort [names.txt] | uniq | wc [-l]"},
    {"count words in README.md", NULL, "wc [-w] [README.md]"},
    {"grep 'TODO' in *.c files under src", NULL, "grep [-rn] [--include=*.c] [TODO] [src]"},
    {"convert to uppercase", "abc\n", "tr [[:lower:]] [[:upper:]]"},
    {"convert notes.txt to lowercase", NULL, "cat [notes.txt] | tr [[:upper:]] [[:lower:]]"},
    {"replace foo with bar in notes.txt", NULL, "sed [s/foo/bar/g] [notes.txt]"},
    {"replace 'a/b' with 'c&d'", "x\n", "sed [s/a\\/b/c\\&d/g]"},
    {"show the 10 most common words", "the cat\n",
     "tr [-s] [[:space:]] [\\n] | sort | uniq [-c] | sort [-rn] | head [-n] [10]"},
    {"count lines in all .c files under src", NULL, "find [src] [-name] [*.c] | xargs [-d] [\\n] [wc] [-l]"},
    {"how many files are in src", NULL, "find [src] [-type] [f] | wc [-l]"},
    {"print the second column of data.csv", NULL, "cut [-d,] [-f2] [data.csv]"},
    {"print the third field", "a b c\n", "awk [{print $3}]"},
    {"which files contain 'TODO'", NULL, "grep [-rl] [TODO] [.]"},
    {"count lines containing 'ERROR' in app.log", NULL, "grep [ERROR] [app.log] | wc [-l]"},
    {"count occurrences of 'foo' in notes.txt", NULL, "grep [-o] [foo] [notes.txt] | wc [-l]"},
    {"sort data.txt by the second column numerically", NULL, "sort [-n] [-k2] [data.txt]"},
    {"sort by column 3 in reverse", "a b c\n", "sort [-r] [-k3]"},
    {"pretty print config.json", NULL, "jq [.] [config.json]"},
    {"extract the name field from the json", "{\"name\": 1}\n", "jq [-r] [.name]"},
    {"show the contents of notes.txt", NULL, "cat [notes.txt]"},
    {"extract the id field", "[{\"id\": 1}, {\"id\": 2}]\n", "jq [-r] [.[].id]"},
    {"get the name of each item in users.json", NULL, "jq [-r] [.[].name] [users.json]"},
    {"count the elements in data.json", NULL, "jq [length] [data.json]"},
    {"show the header of data.csv", NULL, "head [-n] [1] [data.csv]"},
    {"remove blank lines", "a\n\nb\n", "sed [/^$/d]"},
    {"find files larger than 10MB", NULL, "find [.] [-type] [f] [-size] [+10M]"},
    {"find files modified in the last 7 days under src", NULL, "find [src] [-type] [f] [-mtime] [-7]"},
    {"list all directories", NULL, "find [.] [-type] [d]"},
    {"show lines 10 to 20 of notes.txt", NULL, "sed [-n] [10,20p] [notes.txt]"},
    {"print line 42 of notes.txt", NULL, "sed [-n] [42p] [notes.txt]"},
    {"sum the second column of data.csv", NULL, "awk [-F,] [{s += $2} END {print s}] [data.csv]"},
    {"average of the third column", "1 2 3\n", "awk [{s += $3; n++} END {if (n) print s / n}]"},
    {"replace tabs with commas in data.tsv", NULL, "cat [data.tsv] | tr [\\t] [,]"},
    {"skip the header of data.csv", NULL, "tail [-n] [+2] [data.csv]"},
    {"show lines longer than 80 characters in main.c", NULL, "awk [length($0) > 80] [main.c]"},
    {"count empty lines in notes.txt", NULL, "grep [^$] [notes.txt] | wc [-l]"},
    {"find TODO or FIXME under src", NULL, "grep [-rnE] [TODO|FIXME] [src]"},
    {"extract email addresses from contacts.txt", NULL,
     "grep [-oE] [[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}] [contacts.txt]"},
    {"count how many times each word appears", "a b a\n",
     "tr [-s] [[:space:]] [\\n] | sort | uniq [-c] | sort [-rn]"},
    {"count the number of files in the current directory", NULL, "find [.] [-type] [f] | wc [-l]"},
    {"list files sorted by modification time", NULL, "ls [-t]"},
    {"list the 5 most recently modified files", NULL, "ls [-t] | head [-n] [5]"},
    {"show the 5 largest files", NULL,
     "find [.] [-type] [f] [-printf] [%s %p\\n] | sort [-rn] | head [-n] [5]"},
    {"find empty directories", NULL, "find [.] [-type] [d] [-empty]"},
    {"show duplicate lines", "a\na\n", "sort | uniq [-d]"},
    {"show the first 3 columns", "a b c d\n", "awk [{print $1, $2, $3}]"},
    {"print columns 1 and 3 of data.csv", NULL, "cut [-d,] [-f1,3] [data.csv]"},
    {"show lines that start with #", "#x\n", "grep [-E] [^#]"},
    {"lines that end in a period", "a.\n", "grep [-E] [\\.$]"},
    {"how many TODOs are there", NULL, "grep [-r] [TODO] [.] | wc [-l]"},
    {"count lines in each file under src", NULL, "find [src] [-type] [f] | xargs [-d] [\\n] [wc] [-l]"},
    {"show the top 10 words", "a b\n",
     "tr [-s] [[:space:]] [\\n] | sort | uniq [-c] | sort [-rn] | head [-n] [10]"},
    {"which IP made the most requests", access_excerpt,
     "awk [{print $1}] | sort | uniq [-c] | sort [-rn] | head [-n] [1]"},
    {"count GET requests", access_excerpt, "grep [GET] | wc [-l]"},
    {"find TODO in src", NULL, "grep [-rn] [TODO] [src]"},
    {"list files in reverse order", NULL, "ls [-r]"},
    {"convert tabs to commas in data.tsv", NULL, "cat [data.tsv] | tr [\\t] [,]"},
    {"print the 3rd line of notes.txt", NULL, "sed [-n] [3p] [notes.txt]"},
    {"find the largest file under src", NULL,
     "find [src] [-type] [f] [-printf] [%s %p\\n] | sort [-rn] | head [-n] [1]"},
    {"remove trailing whitespace from main.c", NULL, "sed [s/[[:space:]]*$//] [main.c]"},
    {"delete all digits", "a1\n", "tr [-d] [[:digit:]]"},
    {"remove lines containing foo", NULL, "grep [-v] [foo]"},
    {"skip the header and sum the third column of data.csv", NULL,
     "tail [-n] [+2] [data.csv] | awk [-F,] [{s += $3} END {print s}]"},
    {"what are the most common words in README.md", NULL,
     "cat [README.md] | tr [-s] [[:space:]] [\\n] | sort | uniq [-c] | sort [-rn]"},
    {"what is the most common line", "a\n", "sort | uniq [-c] | sort [-rn] | head [-n] [1]"},
    {"show hidden files", NULL, "ls [-a]"},
    {"search recursively for 'malloc' in src", NULL, "grep [-rn] [malloc] [src]"},
    {"show all lines except those containing DEBUG", "x\n", "grep [-v] [DEBUG]"},
    {"print the lines between 5 and 15", "x\n", "sed [-n] [5,15p]"},
    {"show the 20 most recent lines of app.log", NULL, "tail [-n] [20] [app.log]"},
    {"get the 2nd field of each line separated by colons", "a:b\n", "cut [-d:] [-f2]"},
    {"print every line that contains a number", "a1\n", "grep [-E] [[0-9]]"},
    {"cut the first 5 characters of each line", "abcdefg\n", "cut [-c1-5]"},
    {"show the size of each file", NULL, "ls [-l]"},
    {"count the number of lines in each file", NULL, "find [.] [-type] [f] | xargs [-d] [\\n] [wc] [-l]"},
    {"find all shell scripts", NULL, "find [.] [-name] [*.sh]"},
    {"list only directories", NULL, "find [.] [-type] [d]"},
    {"how many times does 'foo' appear in bar.txt", NULL, "grep [-o] [foo] [bar.txt] | wc [-l]"},
    {"how often does ERROR occur in app.log", NULL, "grep [-o] [ERROR] [app.log] | wc [-l]"},
    {"find all .c and .h files", NULL, "find [.] [(] [-name] [*.c] [-o] [-name] [*.h] [)]"},
    {"grep TODO in .c and .h files under src", NULL,
     "grep [-rn] [--include=*.c] [--include=*.h] [TODO] [src]"},
    {"display everything after line 10", "x\n", "tail [-n] [+11]"},
    {"count characters in each line", "ab\n", "awk [{print length($0)}]"},
    /* user text never becomes an option: paths starting with '-' are made ./-x */
    {"list files under -delete", NULL, "ls [./-delete]"},
    {"show the first 3 lines of -rf.txt", NULL, "head [-n] [3] [./-rf.txt]"},
    {"grep '-v' in notes.txt", NULL, "grep [-e] [-v] [notes.txt]"},
    {"show the 10 most frequent client IPs", access_excerpt,
     "awk [{print $1}] | sort | uniq [-c] | sort [-rn] | head [-n] [10]"},
    {"count requests per status code", access_excerpt,
     "awk [{print $9}] | sort | uniq [-c] | sort [-rn]"},
    {"lines not containing curl", access_excerpt, "grep [-v] [curl]"},
    {"how many requests returned 404", access_excerpt, "awk [$9 == 404] | wc [-l]"},
    {"show the 3 most requested pages in examples/access.log", NULL,
     "awk [{print $7}] [examples/access.log] | sort | uniq [-c] | sort [-rn] | head [-n] [3]"},
    /* the count after the superlative, and "top N" of sizes or ages is not a frequency */
    {"list the largest 5 files in /var/log", NULL,
     "find [/var/log] [-type] [f] [-printf] [%s %p\\n] | sort [-rn] | head [-n] [5]"},
    {"top 5 largest files in the current directory", NULL,
     "find [.] [-type] [f] [-printf] [%s %p\\n] | sort [-rn] | head [-n] [5]"},
    {"show the 3 largest .log files under /var/log", NULL,
     "find [/var/log] [-type] [f] [-name] [*.log] [-printf] [%s %p\\n] | sort [-rn] | head [-n] [3]"},
    {"list the oldest 3 files under docs", NULL, "ls [-tr] [docs] | head [-n] [3]"},
    /* ls -t lists the newest first: the latest N are its head */
    {"show the latest 5 files in /tmp", NULL, "ls [-t] [/tmp] | head [-n] [5]"},
    /* lines ranked by length */
    {"show the 5 longest lines in README.md", NULL,
     "awk [{print length($0) \"\\t\" $0}] [README.md] | sort [-rn] | head [-n] [5] | cut [-f2-]"},
    {"show the longest line in notes.txt", NULL,
     "awk [{print length($0) \"\\t\" $0}] [notes.txt] | sort [-rn] | head [-n] [1] | cut [-f2-]"},
    {"print the 3 shortest lines", "a\nbb\n",
     "awk [{print length($0) \"\\t\" $0}] | sort [-n] | head [-n] [3] | cut [-f2-]"},
    /* directory sizes */
    {"show the top 10 largest directories under /var", NULL,
     "du [-h] [-d] [1] [/var] | sort [-rh] | head [-n] [10]"},
    {"show disk usage of each directory in /var", NULL, "du [-h] [-d] [1] [/var] | sort [-rh]"},
    {"list the smallest directories in /usr", NULL, "du [-h] [-d] [1] [/usr] | sort [-h] | head [-n] [10]"},
    {"how big is the src directory", NULL, "du [-sh] [src]"},
    /* files per extension */
    {"count files per extension under src", NULL,
     "find [src] [-type] [f] [-name] [*.*] | sed [s/.*\\.//] | sort | uniq [-c] | sort [-rn]"},
    /* both of two words: a second grep on the lines, or on the files */
    {"print every line that contains both foo and bar in notes.txt", NULL, "grep [foo] [notes.txt] | grep [bar]"},
    {"show me the files in src that contain both malloc and free", NULL,
     "grep [-rl] [malloc] [src] | xargs [-d] [\\n] [grep] [-l] [free]"},
    {"reverse the order of lines in notes.txt", NULL, "tac [notes.txt]"},
    /* piped CSV/TSV with a header: columns by name, the header line kept out of the data */
    {"average the age column", people_csv, "tail [-n] [+2] | awk [-F,] [{s += $2; n++} END {if (n) print s / n}]"},
    {"count people per city", people_csv, "tail [-n] [+2] | cut [-d,] [-f3] | sort | uniq [-c] | sort [-rn]"},
    {"sort by age", people_csv, "tail [-n] [+2] | sort [-n] [-k2] [-t,]"},
    {"how many rows are there", people_csv, "tail [-n] [+2] | wc [-l]"},
    {"show the names of people in paris", people_csv, "grep [paris] | cut [-d,] [-f1]"},
    {"list the unique cities", people_tsv, "tail [-n] [+2] | cut [-f3] | sort | uniq"},
    {"show the header", people_csv, "head [-n] [1]"},
    {"sort by the second column numerically", numbers_csv, "sort [-n] [-k2]"},
    /* web logs: named fields, time buckets, statuses and addresses */
    {"how many requests were 404", access_excerpt, "awk [$9 == 404] | wc [-l]"},
    {"show the requests from 10.0.0.7", access_excerpt, "grep [-E] [10\\.0\\.0\\.7]"},
    {"count requests per hour", access_excerpt, "awk [{print substr($4, 2, 14)}] | sort | uniq [-c]"},
    {"show daily request counts", access_excerpt, "awk [{print substr($4, 2, 11)}] | sort | uniq [-c]"},
    {"show the total bytes sent", access_excerpt, "awk [{s += $10} END {print s}]"},
    {"which user agent is the most common", combined_log,
     "awk [-F\"] [{print $6}] | sort | uniq [-c] | sort [-rn] | head [-n] [1]"},
    /* ls -S lists the largest first already */
    {"list files by size, largest first", NULL, "ls [-lS]"},
    {"list files by size, smallest first", NULL, "ls [-lSr]"},
    {"find broken symlinks", NULL, "find [.] [-xtype] [l]"},
    {"list all symbolic links under /usr/bin", NULL, "find [/usr/bin] [-type] [l]"},
    {"find directories named node_modules", NULL, "find [.] [-name] [node_modules] [-type] [d]"},
    {"find files owned by root in /etc", NULL, "find [/etc] [-type] [f] [-user] [root]"},
    {"show the word count of README.md", NULL, "wc [-w] [README.md]"},
    {"find all files larger than 100k under src, sorted by size", NULL,
     "find [src] [-type] [f] [-size] [+100k] [-printf] [%s %p\\n] | sort [-n]"},
    {"print the number of lines of each csv file", NULL, "find [.] [-name] [*.csv] | xargs [-d] [\\n] [wc] [-l]"},
    {"find all TODO and FIXME comments in the codebase", NULL, "grep [-rnE] [TODO|FIXME] [.]"},
    {"find lines longer than 120 characters in src", NULL, "grep [-rnE] [.{121,}] [src]"},
    {"what's taking up space in /var", NULL, "du [-h] [-d] [1] [/var] | sort [-rh] | head [-n] [10]"},
    /* piped JSON objects: keys by name, sums / sorts / slices in jq */
    {"get all names", users_json, "jq [-r] [.[].name]"},
    {"sum the ages", users_json, "jq [[.[].age] | add]"},
    {"average age", users_json, "jq [[.[].age] | add / length]"},
    {"sort by age", users_json, "jq [sort_by(.age)]"},
    {"show the first item", users_json, "jq [.[0]]"},
    {"show the first 2 items", users_json, "jq [.[:2]]"},
    {"show the last 2 items", users_json, "jq [.[-2:]]"},
    /* ages: -N within the last N, +N longer ago */
    {"find files not modified in the last 30 days under /var/log", NULL,
     "find [/var/log] [-type] [f] [-mtime] [+30]"},
    {"find files older than 2 weeks in /tmp", NULL, "find [/tmp] [-type] [f] [-mtime] [+14]"},
    {"files newer than 3 hours", NULL, "find [.] [-type] [f] [-mmin] [-180]"},
    /* lines per file, ranked; lines of code */
    {"which file in src has the most lines", NULL,
     "find [src] [-type] [f] | xargs [-d] [\\n] [wc] [-l] | grep [-v] [ total$] | sort [-rn] | head [-n] [1]"},
    {"show the 10 files with the most lines under src", NULL,
     "find [src] [-type] [f] | xargs [-d] [\\n] [wc] [-l] | grep [-v] [ total$] | sort [-rn] | head [-n] [10]"},
    {"how many lines of code are in src", NULL, "find [src] [-type] [f] | xargs [-d] [\\n] [wc] [-l]"},
    {"print the first and last line of notes.txt", NULL, "sed [-n] [1p;$p] [notes.txt]"},
    /* lines by position or emptiness; classes stay regexes when anchored; plural words found singular */
    {"show every other line", "a\nb\n", "awk [NR % 2 == 1]"},
    {"print the even lines", "a\nb\n", "awk [NR % 2 == 0]"},
    {"show lines that are not empty", "a\n\nb\n", "sed [/^$/d]"},
    {"show lines that are empty", "a\n\nb\n", "grep [^$]"},
    {"find lines that start with a digit", "1a\nb\n", "grep [-E] [^[0-9]]"},
    {"show lines with errors", "error: x\n", "grep [error]"},
    {"search for aliases in notes.txt", NULL, "grep [aliases] [notes.txt]"},
    {"show the last modified file in src", NULL, "ls [-t] [src] | head [-n] [1]"},
    {"count the number of .js files in each directory", NULL,
     "find [.] [-name] [*.js] [-printf] [%h\\n] | sort | uniq [-c] | sort [-rn]"},
    {"show how many lines each python file has under src", NULL, "find [src] [-name] [*.py] | xargs [-d] [\\n] [wc] [-l]"},
    {"show only unique lines of names.txt in sorted order", NULL, "sort [names.txt] | uniq"},
    {"print lines 100 to the end of big.txt", NULL, "tail [-n] [+100] [big.txt]"},
    {"show the size of README.md", NULL, "wc [-c] [README.md]"},
    {"list all files with their sizes in docs", NULL, "ls [-l] [docs]"},
    {"convert data.csv to tab separated", NULL, "cat [data.csv] | tr [,] [\\t]"},
    {"count the number of words in each line", "a b\n", "awk [{print NF}]"},
    {"show the second word of each line", "a b\n", "awk [{print $2}]"},
    {"print lines where the third column is greater than 100", "a b 200\n", "awk [$3 > 100]"},
    {"find the maximum value in the second column", "a 2\n", "awk [NR == 1 || $2 > m {m = $2} END {print m}]"},
    {"find files with no extension in src", NULL, "find [src] [-type] [f] [-not] [-name] [*.*]"},
    {"find all hidden files under src", NULL, "find [src] [-type] [f] [-name] [.*]"},
    {"show the total size of all .log files", NULL,
     "find [.] [-name] [*.log] [-printf] [%s\\n] | awk [{s += $1} END {print s}]"},
    {"list the 10 largest files modified in the last week", NULL,
     "find [.] [-type] [f] [-mtime] [-7] [-printf] [%s %p\\n] | sort [-rn] | head [-n] [10]"},
    {"list unique extensions in src", NULL, "find [src] [-type] [f] [-name] [*.*] | sed [s/.*\\.//] | sort | uniq"},
    {"show which lines differ between a.txt and b.txt", NULL, "diff [a.txt] [b.txt]"},
    {"show lines common to a.txt and b.txt", NULL, "grep [-Fxf] [a.txt] [b.txt]"},
    {"show the lines containing an email address in contacts.txt", NULL,
     "grep [-E] [[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}] [contacts.txt]"},
    {"show the 10 most recent error lines in app.log", NULL, "grep [-i] [error] [app.log] | tail [-n] [10]"},
    {"find all files that contain TODO but not FIXME under src", NULL,
     "grep [-rl] [TODO] [src] | xargs [-d] [\\n] [grep] [-L] [FIXME]"},
    {"lines containing foo but not bar in notes.txt", NULL, "grep [foo] [notes.txt] | grep [-v] [bar]"},
    {"list all executables in /usr/local/bin", NULL, "find [/usr/local/bin] [-type] [f] [-executable]"},
    {"show the contents of every .conf file in /etc", NULL, "find [/etc] [-name] [*.conf] | xargs [-d] [\\n] [cat]"},
    {"count the lines in every file under src and sort by count", NULL,
     "find [src] [-type] [f] | xargs [-d] [\\n] [wc] [-l] | sort [-n]"},
    {"show lines that do not start with #", "#a\nb\n", "grep [-vE] [^#]"},
    {"remove comments from config.ini", NULL, "grep [-vE] [^[[:space:]]*(#|;|//)] [config.ini]"},
    /* lines dropped from an end: these used to give the opposite (head -n 3, tail -n 1, sed -n 1,5p) */
    {"skip the first 3 lines", "a\n", "tail [-n] [+4]"},
    {"remove the last line", "a\n", "head [-n] [-1]"},
    {"delete the last 2 lines of notes.txt", NULL, "head [-n] [-2] [notes.txt]"},
    {"show everything after the first line", "a\n", "tail [-n] [+2]"},
    {"print all but the last 3 lines", "a\n", "head [-n] [-3]"},
    {"lines after the first 5", "a\n", "tail [-n] [+6]"},
    {"remove the header and the last line", "a\n", "tail [-n] [+2] | head [-n] [-1]"},
    {"skip the first 2 lines and show the next 5", "a\n", "tail [-n] [+3] | head [-n] [5]"},
    {"delete lines 1 to 5 of data.txt", NULL, "sed [1,5d] [data.txt]"},
    {"delete the 3rd line", "a\n", "sed [3d]"},
    {"erase lines containing foo", "a\n", "grep [-v] [foo]"},
    /* line numbers, case-folded sorts, joined lines, trailing blanks found, the largest numbers */
    {"show main.c with line numbers", NULL, "cat [-n] [main.c]"},
    {"find TODO in main.c with line numbers", NULL, "grep [-n] [TODO] [main.c]"},
    {"sort the lines alphabetically ignoring case", "b\nA\n", "sort [-f]"},
    {"sort unique ignoring case", "b\nA\n", "sort [-f] | uniq [-i]"},
    {"join all lines with commas", "a\nb\n", "paste [-s] [-d] [,]"},
    {"join lines in notes.txt with commas", NULL, "paste [-s] [-d] [,] [notes.txt]"},
    {"join the lines", "a\nb\n", "paste [-s] [-d] [ ]"},
    {"join the lines with ' | '", "a\nb\n",
     "awk [-v] [sep= | ] [NR > 1 {printf \"%s\", sep} {printf \"%s\", $0} END {print \"\"}]"},
    {"find lines with trailing whitespace", "a \n", "grep [-E] [[[:space:]]$]"},
    {"find trailing whitespace in src", NULL, "grep [-rnE] [[[:space:]]$] [src]"},
    {"what is the largest number", "3\n1\n", "awk [NR == 1 || $1 > m {m = $1} END {print m}]"},
    {"show the largest 3 numbers", "3\n1\n", "sort [-nr] | head [-n] [3]"},
    {"the 2 smallest values", "3\n1\n", "sort [-n] | head [-n] [2]"},
    {"show only numbers", "a1\n", "grep [-oE] [[0-9]+]"},
    /* files by age, by another file, by what they are not; directories left out of a search */
    {"find files modified more than 3 days ago", NULL, "find [.] [-type] [f] [-mtime] [+3]"},
    {"find files changed less than 2 hours ago", NULL, "find [.] [-type] [f] [-mmin] [-120]"},
    {"find files newer than main.c", NULL, "find [.] [-type] [f] [-newer] [main.c]"},
    {"find files older than main.c", NULL, "find [.] [-type] [f] [-not] [-newer] [main.c]"},
    {"find files that are not python files", NULL, "find [.] [-type] [f] [-not] [-name] [*.py]"},
    {"list files not ending in .c", NULL, "find [.] [-type] [f] [-not] [-name] [*.c]"},
    {"find all files except .git", NULL, "find [.] [-type] [f] [-not] [-path] [*/.git/*]"},
    {"search for TODO but skip the vendor directory", NULL, "grep [-rn] [--exclude-dir=vendor] [TODO] [.]"},
    {"search for TODO excluding node_modules", NULL, "grep [-rn] [--exclude-dir=node_modules] [TODO] [.]"},
    {"find .c files excluding the build directory", NULL, "find [.] [-name] [*.c] [-not] [-path] [*/build/*]"},
    {"show the size of the src folder", NULL, "du [-sh] [src]"},
    {"list the files in src recursively", NULL, "ls [-R] [src]"},
    /* lines by position from the end, between two markers, by their number of words */
    {"show the second to last line", "a\n", "tail [-n] [2] | head [-n] [1]"},
    {"show the penultimate line of notes.txt", NULL, "tail [-n] [2] [notes.txt] | head [-n] [1]"},
    {"show lines between START and END", "a\n", "awk [/START/,/END/]"},
    {"find lines with more than 3 words", "a\n", "awk [NF > 3]"},
    {"show lines that are duplicated", "a\n", "sort | uniq [-d]"},
    /* piped CSV: rows by a named column's value, a named column's extremes */
    {"show rows where age is greater than 30", people_csv, "tail [-n] [+2] | awk [-F,] [$2 > 30]"},
    {"show rows where city is paris", people_csv, "tail [-n] [+2] | awk [-F,] [$3 == \"paris\"]"},
    {"what is the oldest age", people_csv, "tail [-n] [+2] | awk [-F,] [NR == 1 || $2 > m {m = $2} END {print m}]"},
    {"what is the youngest age", people_csv, "tail [-n] [+2] | awk [-F,] [NR == 1 || $2 < m {m = $2} END {print m}]"},
    {"show the person with the highest age", people_csv, "tail [-n] [+2] | sort [-nr] [-k2] [-t,] | head [-n] [1]"},
    /* piped JSON: items by a key's value, a key's extremes, items dropped, sorted descending */
    {"show items where age is greater than 4", users_json, "jq [map(select(.age > 4))]"},
    {"show the names of items where age is greater than 4", users_json, "jq [-r] [.[] | select(.age > 4) | .name]"},
    {"show items where name is b", users_json, "jq [map(select(.name == \"b\"))]"},
    {"show the item with the highest age", users_json, "jq [max_by(.age)]"},
    {"what is the lowest age", users_json, "jq [[.[].age] | min]"},
    {"show everything except the first item", users_json, "jq [.[1:]]"},
    {"remove the last item", users_json, "jq [.[0:-1]]"},
    {"sort by age descending", users_json, "jq [sort_by(.age) | reverse]"},
    /* web logs: the requests of everyone but one client, the first requests dropped */
    {"show all requests except those from 10.0.0.7", access_excerpt, "grep [-vE] [10\\.0\\.0\\.7]"},
    {"skip the first 10 requests", access_excerpt, "tail [-n] [+11]"},
    /* plans that used to do something else than asked (or nothing): line shapes, context,
     * named columns and keys, aggregates per group, web-log statuses and paths, known file names */
    {"lines containing tabs", two_lines, "grep [-E] [\t]"},
    {"number the non-empty lines", two_lines, "nl"},
    {"number all lines", two_lines, "cat [-n]"},
    /* the numbers were dropped once another step ran (it was `head -n 10`) */
    {"show the first 10 lines with line numbers", two_lines, "head [-n] [10] | cat [-n]"},
    {"print every third line", two_lines, "awk [NR % 3 == 0]"},
    {"show the lines that are exactly 'alpha'", two_lines, "grep [-x] [alpha]"},
    {"print lines that do not match exactly 'alpha'", two_lines, "grep [-vx] [alpha]"},
    {"find lines containing 'alpha' as a whole word", two_lines, "grep [-w] [alpha]"},
    {"lines that appear only once", two_lines, "sort | uniq [-u]"},
    {"count words that appear only once", two_lines, "tr [-s] [[:space:]] [\\n] | sort | uniq [-u] | wc [-w]"},
    {"print the first character of each line", two_lines, "cut [-c1]"},
    {"show the last 3 characters of each line", two_lines, "awk [{print substr($0, length($0) - 2)}]"},
    {"wrap lines at 40 characters", two_lines, "fold [-s] [-w] [40]"},
    {"count the vowels", two_lines, "grep [-oE] [[aeiouAEIOU]] | wc [-l]"},
    {"count the digits", two_lines, "grep [-oE] [[0-9]] | wc [-l]"},
    {"count the uppercase letters", two_lines, "grep [-oE] [[A-Z]] | wc [-l]"},
    {"replace all digits with X", two_lines, "sed [s/[0-9]/X/g]"},
    {"replace every number with N", two_lines, "sed [s/[0-9][0-9]*/N/g]"},
    {"show 2 lines of context around 'gamma'", two_lines, "grep [-C] [2] [gamma]"},
    {"show 3 lines before error", two_lines, "grep [-B] [3] [error]"},
    {"show the line after each match of 'alpha'", two_lines, "awk [f {print} {f = /alpha/}]"},
    {"show the line before each match of gamma", two_lines, "awk [NR > 1 && /gamma/ {print prev} {prev = $0}]"},
    {"show the lines after 'alpha'", two_lines, "awk [f; /alpha/ {f = 1}]"},
    {"everything before zeta", two_lines, "awk [/zeta/ {exit} {print}]"},
    {"all lines from hello", two_lines, "awk [/hello/ {f = 1} f]"},
    {"sort the lines by length", two_lines, "awk [{print length($0) \"\\t\" $0}] | sort [-n] | cut [-f2-]"},
    {"sort the lines by length, longest first", two_lines, "awk [{print length($0) \"\\t\" $0}] | sort [-rn] | cut [-f2-]"},
    {"show lines between line 2 and line 4", two_lines, "sed [-n] [2,4p]"},
    {"print from line 2 to line 4", two_lines, "sed [-n] [2,4p]"},
    {"swap the first two words on each line", two_lines, "awk [NF >= 2 {t = $1; $1 = $2; $2 = t} {print}]"},
    {"swap columns 1 and 3", two_lines, "awk [NF >= 3 {t = $1; $1 = $3; $3 = t} {print}]"},
    {"capitalize the first letter of each line", two_lines, "sed [s/^[[:lower:]]/\\U&/]"},
    {"capitalize each word", two_lines, "sed [s/\\b[[:lower:]]/\\u&/g]"},
    {"remove the second column", two_lines, "awk [NF >= 2 {for (i = 2; i < NF; i++) $i = $(i + 1); NF--} {print}]"},
    {"show the names sorted by age", people_csv, "tail [-n] [+2] | sort [-n] [-k2] [-t,] | cut [-d,] [-f1]"},
    {"print the name and city columns", people_csv, "cut [-d,] [-f1,3]"},
    {"convert the csv to json", people_csv, "jq [-Rn] [(input | split(\",\")) as $h | [inputs | select(length > 0) | split(\",\") | [$h, .] | transpose | map({(.[0]): (.[1] | tonumber? // .)}) | add]]"},
    {"show the 2 oldest people", people_csv, "tail [-n] [+2] | sort [-nr] [-k2] [-t,] | head [-n] [2]"},
    {"show the youngest person", people_csv, "tail [-n] [+2] | sort [-n] [-k2] [-t,] | head [-n] [1]"},
    {"name of the oldest person", people_csv, "tail [-n] [+2] | sort [-nr] [-k2] [-t,] | cut [-d,] [-f1] | head [-n] [1]"},
    {"the 3 highest ages", people_csv, "tail [-n] [+2] | sort [-nr] [-k2] [-t,] | cut [-d,] [-f2] | head [-n] [3]"},
    {"count the columns", people_csv, "head [-n] [1] | awk [-F,] [{print NF}]"},
    {"total age", people_csv, "tail [-n] [+2] | awk [-F,] [{s += $2} END {print s}]"},
    {"average age per city", people_csv, "tail [-n] [+2] | awk [-F,] [-vOFS=,] [{s[$3] += $2; n[$3]++} END {for (k in s) print k, s[k] / n[k]}] | sort"},
    {"max age per city", people_csv, "tail [-n] [+2] | awk [-F,] [-vOFS=,] [!($3 in m) || $2 > m[$3] {m[$3] = $2} END {for (k in m) print k, m[k]}] | sort"},
    {"drop the city column", people_csv, "cut [-d,] [--complement] [-f3]"},
    {"rows where name starts with b", people_csv, "tail [-n] [+2] | awk [-F,] [index($1, \"b\") == 1]"},
    {"show rows where city ends with s", people_csv, "tail [-n] [+2] | awk [-F,] [substr($3, length($3) - length(\"s\") + 1) == \"s\"]"},
    {"how many rows have age greater than 30", people_csv, "tail [-n] [+2] | awk [-F,] [$2 > 30] | wc [-l]"},
    {"count items per name", users_json, "jq [-r] [.[].name] | sort | uniq [-c] | sort [-rn]"},
    {"list the keys of the first item", users_json, "jq [.[0] | keys]"},
    {"list all keys", users_json, "jq [map(keys) | add | unique]"},
    {"show only name and age of each item", users_json, "jq [map({name, age})]"},
    {"count the items where age is over 3", users_json, "jq [map(select(.age > 3)) | length]"},
    {"how many items have age greater than 3", users_json, "jq [map(select(.age > 3)) | length]"},
    {"convert to csv", users_json, "jq [-r] [(.[0] | keys_unsorted) as $k | $k, (.[] | [.[$k[]]]) | @csv]"},
    {"group by name", users_json, "jq [group_by(.name)]"},
    {"show items whose name starts with a", users_json, "jq [map(select(.name | tostring | startswith(\"a\")))]"},
    {"minify the json", users_json, "jq [-c] [.]"},
    {"the names sorted by age", users_json, "jq [-r] [sort_by(.age) | .[].name]"},
    {"the 2 oldest items", users_json, "jq [sort_by(.age) | reverse | .[:2]]"},
    {"show the 2 highest ages", users_json, "jq [[.[].age] | sort | reverse | .[:2]]"},
    {"total age", users_json, "jq [[.[].age] | add]"},
    {"remove the age key", users_json, "jq [map(del(.age))]"},
    {"count the fields", users_json, "jq [.[0] | length]"},
    {"average age per city", cities_json, "jq [group_by(.city) | map({city: .[0].city, age: (map(.age) | add / length)})]"},
    {"which paths returned 500", access_excerpt, "awk [$9 == 500 {print $7}]"},
    {"requests with status 404 per path", access_excerpt, "awk [$9 == 404 {print $7}] | sort | uniq [-c] | sort [-rn]"},
    {"count the 404 errors per path", access_excerpt, "awk [$9 == 404 {print $7}] | sort | uniq [-c] | sort [-rn]"},
    {"list the requests that were not 200", access_excerpt, "awk [$9 != 200]"},
    {"show requests to /api", access_excerpt, "awk [index($7, \"/api\") == 1]"},
    {"show error responses", access_excerpt, "awk [$9 >= 400]"},
    {"show 4xx and 5xx responses", access_excerpt, "awk [$9 ~ /^[45]/]"},
    {"count server errors", access_excerpt, "awk [$9 ~ /^5/] | wc [-l]"},
    {"count errors per IP", access_excerpt, "awk [$9 >= 400 {print $1}] | sort | uniq [-c] | sort [-rn]"},
    {"which files changed today", NULL, "find [.] [-type] [f] [-daystart] [-mtime] [0]"},
    {"list files modified yesterday in src", NULL, "find [src] [-type] [f] [-daystart] [-mtime] [1]"},
    {"list the files in src that contain main", NULL, "grep [-rl] [main] [src]"},
    {"print the path of every Makefile", NULL, "find [.] [-name] [Makefile]"},
    {"find all Dockerfiles", NULL, "find [.] [-name] [Dockerfile]"},
    {"count lines in Makefile", NULL, "wc [-l] [Makefile]"},
    {"show the LICENSE", NULL, "cat [LICENSE]"},
    {"find files with 'config' in their name", NULL, "find [.] [-name] [*config*]"},
    {"files whose name contains test", NULL, "find [.] [-name] [*test*]"},
    {"show lines in a.txt that are not in b.txt", NULL, "grep [-vxFf] [b.txt] [a.txt]"},
    {"show everything before the line containing END in notes.txt", NULL, "awk [/END/ {exit} {print}] [notes.txt]"},
    /* whole inputs and files: shuf, checksums, base64, od, seq, join (declined or wrong before) */
    {"shuffle the lines", two_lines, "shuf"},
    {"sort the lines in random order", two_lines, "shuf"},
    {"pick 3 random lines", two_lines, "shuf [-n] [3]"},
    {"show a random line", two_lines, "shuf [-n] [1]"},
    {"show 2 random lines containing alpha", two_lines, "grep [alpha] | shuf [-n] [2]"},
    {"3 random lines from the first 100", two_lines, "head [-n] [100] | shuf [-n] [3]"},
    {"show 3 random lines of notes.txt", NULL, "shuf [-n] [3] [notes.txt]"},
    {"sha256 checksum of every file under src", NULL, "find [src] [-type] [f] | xargs [-d] [\\n] [-r] [sha256sum]"},
    {"md5 of every file in src modified in the last day", NULL,
     "find [src] [-type] [f] [-mtime] [-1] | xargs [-d] [\\n] [-r] [md5sum]"},
    {"checksums of all .iso files", NULL, "find [.] [-type] [f] [-name] [*.iso] | xargs [-d] [\\n] [-r] [sha256sum]"},
    {"sha256sum of a.txt and b.txt", NULL, "sha256sum [a.txt] [b.txt]"},
    {"checksum of the input", two_lines, "sha256sum"},
    {"sha256 of each file", "src/a.c\nsrc/b.c\n", "xargs [-d] [\\n] [-r] [sha256sum]"},
    {"find duplicate files in downloads", NULL,
     "find [downloads] [-type] [f] | xargs [-d] [\\n] [-r] [md5sum] | sort | uniq [-w32] [--all-repeated=separate]"},
    {"files with the same content", NULL,
     "find [.] [-type] [f] | xargs [-d] [\\n] [-r] [md5sum] | sort | uniq [-w32] [--all-repeated=separate]"},
    {"base64 encode secret.txt", NULL, "base64 [secret.txt]"},
    {"base64 encode the first line", two_lines, "head [-n] [1] | base64"},
    {"decode the base64 input", two_lines, "base64 [-d]"},
    {"decode payload.b64 from base64", NULL, "base64 [-d] [payload.b64]"},
    {"decode the base64 and show the first 5 lines", two_lines, "base64 [-d] | head [-n] [5]"},
    {"hex dump of data.bin", NULL, "od [-A] [x] [-t] [x1z] [-v] [data.bin]"},
    {"hex dump of the first 32 bytes of data.bin", NULL, "head [-c] [32] [data.bin] | od [-A] [x] [-t] [x1z] [-v]"},
    {"octal dump of data.bin", NULL, "od [-A] [o] [-t] [o1] [-v] [data.bin]"},
    /* the first bytes of the input, or of each line */
    {"show the first 64 bytes", two_lines, "head [-c] [64]"},
    {"show the first 10 bytes of each line", two_lines, "cut [-c1-10]"},
    {"print the numbers from 1 to 10", NULL, "seq [10]"},
    {"count down from 10 to 1", NULL, "seq [10] [-1] [1]"},
    {"the odd numbers from 1 to 9", NULL, "seq [1] [2] [9]"},
    {"the even numbers from 1 to 9 in reverse", NULL, "seq [8] [-2] [2]"},
    {"generate a sequence from 5 to 50 by 5", NULL, "seq [5] [5] [50]"},
    {"numbers from 0 to 100 in steps of 5", NULL, "seq [0] [5] [100]"},
    {"sum the numbers from 1 to 100", NULL, "seq [100] | awk [{s += $1} END {print s}]"},
    {"numbers from 1 to 100 containing 7", NULL, "seq [100] | grep [7]"},
    {"join a.txt and b.txt on the first field", NULL, "join [a.txt] [b.txt]"},
    {"join the files a.txt and b.txt by field 2", NULL, "join [-j2] [a.txt] [b.txt]"},
    {"join users.csv and orders.csv on the second column", NULL, "join [-t,] [-j2] [users.csv] [orders.csv]"},
    {"the odd numbers from 10 to 1", NULL, "seq [9] [-2] [1]"},
    {"md5 of the files containing TODO", NULL, "grep [-rl] [TODO] [.] | xargs [-d] [\\n] [-r] [md5sum]"},
    /* the same words searched for, or in a file name, ask for none of these tools */
    {"find files named *.md5", NULL, "find [.] [-name] [*.md5]"},
    {"lines containing base64", two_lines, "grep [base64]"},
    {"grep for shuffle", two_lines, "grep [shuffle]"},
    {"find lines mentioning random", two_lines, "grep [random]"},
    /* file sizes in any unit; "under N" is a quantity, not a directory */
    {"list files larger than 100 megabytes in home", NULL, "find [home] [-type] [f] [-size] [+100M]"},
    {"files bigger than 2 gigs", NULL, "find [.] [-type] [f] [-size] [+2G]"},
    {"find files smaller than 10 kilobytes", NULL, "find [.] [-type] [f] [-size] [-10k]"},
    {"files under 100 bytes", NULL, "find [.] [-type] [f] [-size] [-100c]"},
    {"files under 2024/ larger than 1 mb", NULL, "find [2024] [-type] [f] [-size] [+1M]"},
    {"find files named *.bak and list their sizes", NULL, "find [.] [-name] [*.bak] [-printf] [%s %p\\n]"},
    /* which files contain a word, also with data piped in: the directory named is read */
    {"which files in src contain malloc", NULL, "grep [-rl] [malloc] [src]"},
    {"which files in src mention malloc", two_lines, "grep [-rl] [malloc] [src]"},
    {"list files under src that reference malloc", NULL, "grep [-rl] [malloc] [src]"},
    {"search recursively for malloc in src", two_lines, "grep [-rn] [malloc] [src]"},
    {"grep TODO in src/", two_lines, "grep [-rn] [TODO] [src]"},
    /* duplicates dropped where they stand */
    {"remove duplicate lines without sorting", two_lines, "awk [!seen[$0]++]"},
    {"unique lines in their original order", two_lines, "awk [!seen[$0]++]"},
    {"unique lines, ignoring case, keep order", two_lines, "awk [!seen[tolower($0)]++]"},
    {"count unique lines without sorting", two_lines, "awk [!seen[$0]++] | wc [-l]"},
    {"remove duplicates", two_lines, "sort | uniq"},
    /* "lines from FILE" reads the file; "lines from WORD" starts at the word */
    {"remove duplicate lines from names.txt", NULL, "sort [names.txt] | uniq"},
    {"show lines from notes.txt containing foo", NULL, "grep [foo] [notes.txt]"},
    {"all lines from hello", two_lines, "awk [/hello/ {f = 1} f]"},
    /* how many times a word appears: its occurrences */
    {"count how many times the word error appears in app.log", NULL, "grep [-o] [error] [app.log] | wc [-l]"},
    {"how many times does error appear in app.log", NULL, "grep [-o] [error] [app.log] | wc [-l]"},
    {"count the word error in app.log", NULL, "grep [-o] [error] [app.log] | wc [-l]"},
    /* "lines starting with X" begin with X; "starting at X" starts there */
    {"lines starting with alpha", two_lines, "grep [-E] [^alpha]"},
    {"all lines starting from alpha", two_lines, "awk [/alpha/ {f = 1} f]"},
    /* web-log statuses as adjectives; one thing named in the singular is the top one */
    {"list the 404 paths", access_excerpt, "awk [$9 == 404 {print $7}]"},
    {"most requested page", access_excerpt, "awk [{print $7}] | sort | uniq [-c] | sort [-rn] | head [-n] [1]"},
    {"the most popular pages", access_excerpt, "awk [{print $7}] | sort | uniq [-c] | sort [-rn]"},
    {"the most common word", two_lines, "tr [-s] [[:space:]] [\\n] | sort | uniq [-c] | sort [-rn] | head [-n] [1]"},
    /* two files compared, ignoring case / whitespace / blank lines, also with data piped in */
    {"compare a.txt with b.txt ignoring whitespace", NULL, "diff [-w] [a.txt] [b.txt]"},
    {"diff a.txt and b.txt ignoring case and blank lines", two_lines, "diff [-iB] [a.txt] [b.txt]"},
    {"diff a.txt b.txt ignoring whitespace, case and blank lines", NULL, "diff [-iwB] [a.txt] [b.txt]"},
    {"lines common to a.txt and b.txt", two_lines, "grep [-Fxf] [a.txt] [b.txt]"},
    /* blank lines removed as the last of a list, the other words kept */
    {"remove trailing whitespace and blank lines", two_lines,
     "sed [/^[[:space:]]*$/d] | sed [s/[[:space:]]*$//]"},
    {"remove lines containing foo and empty lines", two_lines, "grep [-v] [foo] | sed [/^$/d]"},
    /* permissions and owner: ls -ld (changing them is declined) */
    {"show permissions of run.sh", NULL, "ls [-ld] [run.sh]"},
    {"who owns notes.txt", NULL, "ls [-ld] [notes.txt]"},
    {"show the permissions of the src directory", NULL, "ls [-ld] [src]"},
    /* "older / younger than N": the age column or key */
    {"how many people are older than 4", users_json, "jq [map(select(.age > 4)) | length]"},
    {"names of people younger than 30", people_csv, "tail [-n] [+2] | awk [-F,] [$2 < 30] | cut [-d,] [-f1]"},
    {"show lines with more than 1 word", two_lines, "awk [NF > 1]"},
    {"lines with exactly one word", two_lines, "awk [NF == 1]"},
    {"how often does each word appear", two_lines, "tr [-s] [[:space:]] [\\n] | sort | uniq [-c] | sort [-rn]"},
};

static agx_backend *make_backend(void) {
    agx_backend *b = NULL;
    agx_error err;
    agx_error_clear(&err);
    assert_int_equal(agx_backend_rules_create(NULL, &b, &err), AGX_OK);
    assert_non_null(b);
    return b;
}

/* Renders a plan as "cmd [a] [b] | cmd" and checks that tasks chain 1 -> 2 -> ... */
static char *render(const agx_plan *plan) {
    agx_strbuf sb;
    agx_strbuf_init(&sb);
    for (size_t i = 0; i < plan->n_tasks; i++) {
        const agx_task *t = &plan->tasks[i];
        assert_int_equal(t->task_number, (int)i + 1);
        assert_int_equal(t->input_from_task, (int)i); /* 0 for the first task */
        assert_int_equal(t->timeout_secs, AGX_DEFAULT_TIMEOUT_SECS);
        agx_strbuf_printf(&sb, "%s%s", i ? " | " : "", t->command);
        for (size_t j = 0; j < t->n_args; j++) agx_strbuf_printf(&sb, " [%s]", t->args[j]);
    }
    return agx_strbuf_take(&sb);
}

static agx_status plan_for(agx_backend *b, const agx_registry *reg, const char *instruction,
                           const char *piped, agx_generated_plan *gp, agx_error *err) {
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, reg);
    agx_input_summary in;
    memset(&in, 0, sizeof in);
    if (piped) {
        agx_error e;
        assert_int_equal(agx_input_summarize(piped, strlen(piped), &in, &e), AGX_OK);
        ctx.input = &in;
    }
    agx_status s = agx_backend_generate_plan(b, instruction, &ctx, gp, err);
    agx_input_summary_free(&in);
    return s;
}

static void test_everyday_instructions(void **state) {
    (void)state;
    agx_backend *b = make_backend();
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    agx_plan_limits limits = agx_plan_limits_default();
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agx_generated_plan gp;
        agx_error_clear(&err);
        agx_status s = plan_for(b, &reg, cases[i].instruction, cases[i].piped, &gp, &err);
        if (s != AGX_OK) {
            print_error("'%s': failed: %s\n", cases[i].instruction, err.message);
            failures++;
            continue;
        }
        char *got = render(&gp.plan);
        if (strcmp(got, cases[i].expected) != 0) {
            print_error("'%s':\n   got      %s\n   expected %s\n", cases[i].instruction, got,
                        cases[i].expected);
            failures++;
        }
        /* every plan the rules planner makes passes the zero-trust validator */
        assert_int_equal(agx_plan_validate(&gp.plan, &reg, &limits, NULL, &err), AGX_OK);
        assert_string_equal(gp.meta.backend, "rules");
        assert_string_equal(gp.meta.model, "rules");
        assert_true(gp.meta.tokens == -1);
        free(got);
        agx_generated_plan_free(&gp);
    }
    assert_int_equal(failures, 0);
    agx_registry_free(&reg);
    agx_backend_destroy(b);
}

static void test_declines_clearly(void **state) {
    (void)state;
    agx_backend *b = make_backend();
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    static const char *const nonsense[] = {
        "make me a sandwich", "email the results to bob", "delete all files in /tmp",
        "what is the meaning of life", "upload access.log to the server", "xyzzy",
        "create a file named foo.txt", "save the results to out.txt", "hello",
        /* a plan that would ignore the directory named (it used to be sort | uniq -c | sort -rn) */
        "show the owner of each widget in /var",
        /* the bare verb "find" with nothing to look for would list every file */
        "find aliases in .bashrc",
        /* plans run without a shell: '~' would be a directory named '~' */
        "find all hidden files under ~", "show the 20 biggest files in my home directory",
        /* changes to files: these used to be plans that only listed or grepped them */
        "delete all .tmp files", "remove all *.pyc files", "delete the log files older than 7 days",
        "clear the log file", "change permissions of run.sh", "truncate app.log", "wipe the build directory",
        "delete build/", "remove notes.txt",
        /* a separator paste cannot take (it used to grep for the word) */
        "join the lines with a backslash",
        /* a directory to leave out that the plan found would not leave out */
        "show the first 10 lines excluding node_modules",
        /* a checksum tool the registry lacks; a join key by a name no header gives */
        "sha1 of each file", "join a.txt and b.txt on the name column",
        /* changing permissions or owners (an ls -ld plan now answers "show the permissions") */
        "change permissions of run.sh", "set the owner of data.txt to bob",
    };
    for (size_t i = 0; i < sizeof nonsense / sizeof nonsense[0]; i++) {
        agx_generated_plan gp;
        agx_error_clear(&err);
        assert_int_equal(plan_for(b, &reg, nonsense[i], NULL, &gp, &err), AGX_ERR_PARSE);
        assert_non_null(strstr(err.message, "no tool matches"));
        assert_non_null(strstr(err.message, nonsense[i]));
        assert_non_null(strstr(err.message, "AGX_ECHO_MODEL"));
        assert_int_equal(gp.plan.n_tasks, 0);
        assert_int_equal(agx_status_exit_code(err.code), AGX_EXIT_DATA);
    }
    agx_generated_plan gp;
    /* log lines by their time relative to now: only a model could compare the times (it was `tail`) */
    assert_int_equal(plan_for(b, &reg, "show requests from the last hour", access_excerpt, &gp, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "relative to now"));
    assert_int_equal(plan_for(b, &reg, "count the frequency of each user in /etc", NULL, &gp, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "names the directory '/etc'"));
    /* with rows piped in, a bare "in paris" may be a value of the data: not planned again as a directory */
    assert_int_equal(plan_for(b, &reg, "show name and age for people in paris", two_lines, &gp, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "names the directory 'paris'"));
    assert_int_equal(plan_for(b, &reg, "", NULL, &gp, &err), AGX_ERR_USAGE);
    /* hostile input: very long, binary-ish, unbalanced quotes — an answer, never a crash */
    char *big = malloc(100000);
    assert_non_null(big);
    memset(big, 'a', 99999);
    big[99999] = '\0';
    assert_int_equal(plan_for(b, &reg, big, NULL, &gp, &err), AGX_ERR_PARSE);
    free(big);
    static const char *const odd[] = {"'", "\"unterminated", "first 999999999999999999999 lines",
                                      "\x01\x02\xff\xfe grep", "replace with", "files named",
                                      "column 0", "under", "sort by the column",
                                      "f\007foll*", "grep 'a\033[31m'", "show the first\t5 lines"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        agx_status s = plan_for(b, &reg, odd[i], NULL, &gp, &err);
        if (s == AGX_OK) {
            agx_plan_limits limits = agx_plan_limits_default();
            assert_int_equal(agx_plan_validate(&gp.plan, &reg, &limits, NULL, &err), AGX_OK);
            agx_generated_plan_free(&gp);
        } else {
            assert_true(s == AGX_ERR_PARSE);
        }
    }
    /* invalid UTF-8 is declined by name; control characters only separate words */
    assert_int_equal(plan_for(b, &reg, "grep \xff\xfe", NULL, &gp, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "UTF-8"));
    assert_int_equal(plan_for(b, &reg, "show the\tfirst 5\nlines", NULL, &gp, &err), AGX_OK);
    assert_string_equal(gp.plan.tasks[0].command, "head");
    assert_string_equal(gp.plan.tasks[0].args[1], "5");
    agx_generated_plan_free(&gp);
    agx_registry_free(&reg);
    agx_backend_destroy(b);
}

static void test_deterministic(void **state) {
    (void)state;
    agx_backend *b1 = make_backend(), *b2 = make_backend();
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        agx_generated_plan a, c;
        assert_int_equal(plan_for(b1, &reg, cases[i].instruction, cases[i].piped, &a, &err), AGX_OK);
        assert_int_equal(plan_for(b2, &reg, cases[i].instruction, cases[i].piped, &c, &err), AGX_OK);
        char *ja = agx_plan_to_json(&a.plan, AGX_JSON_COMPACT);
        char *jc = agx_plan_to_json(&c.plan, AGX_JSON_COMPACT);
        assert_string_equal(ja, jc);
        free(ja);
        free(jc);
        agx_generated_plan_free(&a);
        agx_generated_plan_free(&c);
    }
    agx_registry_free(&reg);
    agx_backend_destroy(b1);
    agx_backend_destroy(b2);
}

/* A user tool known only through its registry patterns is planned from them;
 * a tool the phrase tables need but the registry lacks makes it decline. */
static void test_registry_patterns_and_missing_tools(void **state) {
    (void)state;
    agx_backend *b = make_backend();
    char *frob_patterns[] = {"frobnicate the widgets", "frobnicate"};
    int ok[] = {0};
    agx_tool tools[] = {
        {"frob", "frob", "Frobnicates widgets", frob_patterns, 2, ok, 1},
    };
    agx_registry reg = {tools, 1, 1};
    agx_generated_plan gp;
    agx_error err;
    assert_int_equal(plan_for(b, &reg, "frobnicate the widgets in parts.txt with 'fast'", NULL, &gp, &err),
                     AGX_OK);
    char *got = render(&gp.plan);
    assert_string_equal(got, "frob [fast] [parts.txt]");
    free(got);
    agx_generated_plan_free(&gp);
    /* a quoted string that looks like an option is not passed to the tool */
    assert_int_equal(plan_for(b, &reg, "frobnicate '-rf' 'x'", NULL, &gp, &err), AGX_OK);
    got = render(&gp.plan);
    assert_string_equal(got, "frob [x]");
    free(got);
    agx_generated_plan_free(&gp);
    /* arguments the validator refuses (a command run from awk) are declined */
    char *awk_patterns[] = {"crunch the numbers"};
    agx_tool awk_tools[] = {{"awk", "awk", "Pattern scanning", awk_patterns, 1, ok, 1}};
    agx_registry awk_reg = {awk_tools, 1, 1};
    assert_int_equal(plan_for(b, &awk_reg, "crunch the numbers with 'BEGIN {system(\"id\")}'", NULL, &gp,
                              &err),
                     AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "not allowed"));
    assert_int_equal(gp.plan.n_tasks, 0);
    /* grep is not in this registry */
    assert_int_equal(plan_for(b, &reg, "lines containing ERROR", "x\n", &gp, &err), AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "'grep'"));
    assert_non_null(strstr(err.message, "not in the tool registry"));
    agx_backend_destroy(b);
}

static void test_max_tasks_and_health(void **state) {
    (void)state;
    agx_backend *b = make_backend();
    agx_registry reg;
    agx_error err;
    assert_int_equal(agx_registry_builtin(&reg, &err), AGX_OK);
    agx_plan_context ctx;
    agx_plan_context_init(&ctx, &reg);
    ctx.max_tasks = 2;
    agx_generated_plan gp;
    assert_int_equal(agx_backend_generate_plan(b, "count occurrences of each line", &ctx, &gp, &err),
                     AGX_ERR_PARSE);
    assert_non_null(strstr(err.message, "limit of 2"));
    assert_int_equal(agx_backend_health_check(b, &err), AGX_OK);
    assert_string_equal(agx_backend_type(b), "rules");
    assert_string_equal(agx_backend_model_name(b), "rules");
    agx_registry_free(&reg);
    agx_backend_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everyday_instructions),
        cmocka_unit_test(test_declines_clearly),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_registry_patterns_and_missing_tools),
        cmocka_unit_test(test_max_tasks_and_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
