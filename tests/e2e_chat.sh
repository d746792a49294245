#!/usr/bin/env bash
# e2e_chat.sh - the tokenizer commands and chat mode as a user meets them, on the
# real Llama 3 vocabulary (built by `bitnet vocab` from ../shared/data's rank file)
# and a tiny generated model carrying it:
# - tokenize / detokenize: known Llama 3 ids, BOS, --special, --pieces, --file,
#   round trips, a vocabulary-only GGUF as -m, errors and exit codes;
# - a scripted chat (stdin from a file): --verbose-prompt shows each turn's
#   templated ids, which must equal the template written out by hand here
#   (tokenized with --special), and the log shows each turn evaluating only its
#   own new tokens, right after the previous turn's; /clear, /exit, a full
#   context (keeps the system prompt), the BitNet template, run -cnv.
# Skips (77) when the shared data is absent.
set -u
source "$(dirname "$0")/e2e_lib.sh"
BIN=$1
TMP=$2
mkdir -p "$TMP"
DATA=${BITNET_SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
RANKS=$DATA/tokenizers/llama3-tokenizer.model
if [ ! -f "$RANKS" ]; then
    skip "$RANKS is absent (the shared test data)"
fi
same() { # name, got, want
    if [ "$2" == "$3" ]; then pass; else fail "$1: got '$2', want '$3'"; fi
}

for c in tokenize detokenize vocab chat; do
    check "$c --help" 0 "usage: bitnet $c" "$BIN" "$c" --help
done

V=$TMP/llama3.gguf
check "vocab" 0 "128256 tokens .*280147 merges" "$BIN" vocab --from-tiktoken "$RANKS" -o "$V"
check "vocab missing file" 1 "^error: cannot open" "$BIN" vocab --from-tiktoken "$TMP/none" -o "$TMP/x.gguf"
printf 'SGVsbG8= 0\nbad!! 1\n' >"$TMP/bad.tiktoken"
check "vocab bad base64" 1 "bad.tiktoken:2: .*base64" "$BIN" vocab --from-tiktoken "$TMP/bad.tiktoken" -o "$TMP/x.gguf"
check "vocab no output" 2 "required" "$BIN" vocab --from-tiktoken "$RANKS"

# ids known from Llama 3 (the reference tokenizer): "Hello world" = 9906 1917
same "tokenize" "$("$BIN" tokenize -m "$V" --no-bos "Hello world")" "9906 1917"
same "tokenize with BOS" "$("$BIN" tokenize -m "$V" "Hello world")" "128000 9906 1917"
same "special parsed" "$("$BIN" tokenize -m "$V" --no-bos --special "<|eot_id|><|start_header_id|>")" \
    "128009 128006"
plain=$("$BIN" tokenize -m "$V" --no-bos "<|eot_id|>")
[[ "$plain" != *128009* && $(wc -w <<<"$plain") -gt 1 ]] && pass || fail "special as text: $plain"
same "pieces" "$("$BIN" tokenize -m "$V" --no-bos --pieces " world" | cut -f1)" "1917"
check "pieces text" 0 "^9906	'Hello'$" "$BIN" tokenize -m "$V" --no-bos --pieces "Hello"
printf 'Grüße, мир! 🦙 x=1234567;\n\n\tend  \n' >"$TMP/text.txt"
ids=$("$BIN" tokenize -m "$V" --no-bos --file "$TMP/text.txt")
"$BIN" detokenize -m "$V" $ids >"$TMP/back.txt"
cmp -s "$TMP/text.txt" "$TMP/back.txt" && pass || fail "round trip through the commands"
"$BIN" detokenize -m "$V" "128000,9906 1917" >"$TMP/hw.txt"
same "detokenize drops BOS, takes lists" "$(cat "$TMP/hw.txt")" "Hello world"
same "detokenize --special" "$("$BIN" detokenize -m "$V" --special 128000 9906)" "<|begin_of_text|>Hello"
check "detokenize bad id" 1 "error: token id 200000 is out of range" "$BIN" detokenize -m "$V" 200000
check "detokenize not an id" 2 "not a list of token ids" "$BIN" detokenize -m "$V" 12x
check "tokenize without -m" 2 "error: -m" "$BIN" tokenize "hi"
check "tokenize two texts" 2 "error: " "$BIN" tokenize -m "$V" a b
check "tokenize not a gguf" 1 "^error: " "$BIN" tokenize -m "$TMP/text.txt" hi

# a tiny model with the Llama 3 vocabulary
M=$TMP/tiny-llama3.gguf
check "gen --vocab" 0 "wrote" "$BIN" gen -o "$M" --shape tiny --type i2_s --vocab "$V" --seed 3
check "info vocab" 0 "vocab: +128256" "$BIN" info "$M"
same "model tokenizes the same" "$("$BIN" tokenize -m "$M" "Hello world")" "128000 9906 1917"
check "run with the real vocab" 0 "^prompt: 3 tokens: 128000 9906 1917" "$BIN" run -m "$M" -p "Hello world" \
    -n 4 --temp 0 --verbose-prompt

# scripted chat, Llama 3 template (the vocabulary has no chat_template: Llama 3 fallback)
SYS="You are terse."
printf 'Hello there\nHow are you?\n' >"$TMP/chat1.txt"
"$BIN" chat -m "$M" --system "$SYS" --verbose-prompt -n 6 --temp 0 <"$TMP/chat1.txt" \
    >"$TMP/chat1.out" 2>"$TMP/chat1.err"
[ $? -eq 0 ] && pass || fail "chat exit code"
t1=$(grep '^turn: ' "$TMP/chat1.err" | sed -n 1p | sed 's/^turn: [0-9]* tokens: //')
t2=$(grep '^turn: ' "$TMP/chat1.err" | sed -n 2p | sed 's/^turn: [0-9]* tokens: //')
H='<|start_header_id|>'
E='<|end_header_id|>'
want1=$("$BIN" tokenize -m "$V" --special "${H}system${E}

${SYS}<|eot_id|>${H}user${E}

Hello there<|eot_id|>${H}assistant${E}

")
want2=$("$BIN" tokenize -m "$V" --no-bos --special "<|eot_id|>${H}user${E}

How are you?<|eot_id|>${H}assistant${E}

")
same "turn 1 templated ids" "$t1" "$want1"
same "turn 2 templated ids" "$t2" "$want2"
# known Llama 3 ids: system 9125, user 882, assistant 78191, "\n\n" 271
[[ "$t1" == "128000 128006 9125 128007 271 "* && "$t2" == *" 128006 78191 128007 271" ]] && pass ||
    fail "Llama 3 header ids in '$t1'"
n1=$(wc -w <<<"$t1")
n2=$(wc -w <<<"$t2")
ctx1=$(sed -n 's/^turn 1: reply .*context \([0-9]*\)\/.*/\1/p' "$TMP/chat1.err")
check "turn 1 evaluates its tokens from 0" 0 "^turn 1: evaluated $n1 new tokens \(positions 0\.\.$((n1 - 1))\)" \
    cat "$TMP/chat1.err"
check "turn 2 evaluates only its new tokens" 0 \
    "^turn 2: evaluated $n2 new tokens \(positions $ctx1\.\.$((ctx1 + n2 - 1))\)" cat "$TMP/chat1.err"
[ "$(wc -l <"$TMP/chat1.out")" -eq 2 ] && pass || fail "chat prints one reply line per turn"

# /clear keeps the system prompt and starts from position 0; /exit stops reading
printf 'Hi\n/clear\nHi\n/exit\nnever read\n' | "$BIN" chat -m "$M" --system "$SYS" -n 3 --temp 0 \
    >/dev/null 2>"$TMP/chat2.err"
check "/clear" 0 "conversation cleared" cat "$TMP/chat2.err"
a=$(sed -n 's/^turn 1: evaluated \([0-9]*\) .*/\1/p' "$TMP/chat2.err")
b=$(sed -n 's/^turn 2: evaluated \([0-9]*\) new tokens (positions 0\..*/\1/p' "$TMP/chat2.err")
same "after /clear the same turn is evaluated again from 0" "$b" "$a"
[ "$(grep -c '^turn [0-9]*: evaluated' "$TMP/chat2.err")" -eq 2 ] && pass || fail "/exit did not stop"

# a full context drops the oldest turns and keeps the system prompt
printf 'one two three four five\nsix seven eight nine ten\neleven twelve\nthirteen\n' |
    "$BIN" chat -m "$M" --system "$SYS" -c 64 -n 10 --temp 0 >/dev/null 2>"$TMP/chat3.err"
check "context full" 0 "context full \(64 tokens\): dropped the 1 oldest turn, keeping the system prompt" \
    cat "$TMP/chat3.err"
check "all turns answered" 0 "^turn 4: reply" cat "$TMP/chat3.err"

# the BitNet 2B-4T template
printf 'Hello there\n' | "$BIN" chat -m "$M" --system "$SYS" --template bitnet --verbose-prompt -n 2 \
    --temp 0 >/dev/null 2>"$TMP/chat4.err"
t=$(grep '^turn: ' "$TMP/chat4.err" | sed 's/^turn: [0-9]* tokens: //')
want=$("$BIN" tokenize -m "$V" --special "System: ${SYS}<|eot_id|>User: Hello there<|eot_id|>Assistant: ")
same "bitnet template ids" "$t" "$want"
check "template from the vocabulary" 0 "template bitnet" bash -c \
    "'$BIN' vocab --from-tiktoken '$RANKS' -o '$TMP/v2.gguf' --chat-template bitnet >/dev/null 2>&1 &&
     '$BIN' gen -o '$TMP/m2.gguf' --shape tiny --type tq2_0 --vocab '$TMP/v2.gguf' >/dev/null 2>&1 &&
     echo hi | '$BIN' chat -m '$TMP/m2.gguf' -n 1 --temp 0"

check "run -cnv" 0 "^turn 1: evaluated" bash -c "echo hi | '$BIN' run -cnv -m '$M' -p '$SYS' -n 2 --temp 0"
check "chat bad template" 2 "error: --template" bash -c "echo hi | '$BIN' chat -m '$M' --template nope"
check "chat without -m" 2 "error: -m" "$BIN" chat

rm -f "$M" "$TMP/m2.gguf"
finish
