// Command tlogread is an independent reader of the ledger's published tile log, written
// against Go's golang.org/x/mod/sumdb/tlog and sumdb/note (not our Python code).
//
// It fetches the checkpoint, verifies the log's signature with note.Open, authenticates
// the C2SP tlog-tiles hash tiles against the signed root with tlog.TileHashReader,
// checks every entry of the entry bundles (or a sample) with tlog.ProveRecord and
// tlog.CheckRecord, checks a consistency proof from an older checkpoint with
// tlog.ProveTree and tlog.CheckTree (and that the older tree's own partial tiles
// reproduce its root), and verifies witnesses' cosignature/v1 lines with crypto/ed25519.
//
// x/mod names tiles tile/H/L/N and entry tiles tile/H/data/N; C2SP tlog-tiles drops the
// height: tile/L/N and tile/entries/N. Tile.Path() is used and mapped, so the 3-digit
// x-prefixed index groups come from Go's own code.
//
// Usage: tlogread -log URL_OR_DIR -vkey VKEY [-old FILE] [-witness VKEY]... [-sample N]
// Prints one JSON line and exits 0, or prints the reason and exits 1.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// source reads the log's files from a URL prefix or a folder.
type source struct {
	base   string
	client *http.Client
}

func (s source) read(path string) ([]byte, error) {
	if strings.HasPrefix(s.base, "http://") || strings.HasPrefix(s.base, "https://") {
		resp, err := s.client.Get(strings.TrimSuffix(s.base, "/") + "/" + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	return os.ReadFile(filepath.Join(s.base, filepath.FromSlash(path)))
}

// c2spPath maps x/mod's tile path (tile/8/L/N[.p/W], tile/8/data/N) to C2SP's.
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", tileHeight))
	if strings.HasPrefix(p, "data/") {
		p = "entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p
}

// tileReader is a tlog.TileReader over the C2SP paths; it trusts nothing it reads
// (TileHashReader authenticates every tile against the tree's signed root).
type tileReader struct {
	src   source
	reads int
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.src.read(c2spPath(t))
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, want %d", c2spPath(t), len(data), t.W*tlog.HashSize)
		}
		r.reads++
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

type checkpoint struct {
	origin string
	tree   tlog.Tree
	body   string
	raw    []byte
}

func openCheckpoint(raw []byte, verifier note.Verifier) (checkpoint, error) {
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return checkpoint{}, errors.New("checkpoint body needs origin, size and root lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return checkpoint{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("bad root hash %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], root)
	return checkpoint{origin: lines[0], tree: tlog.Tree{N: size, Hash: h}, body: n.Text, raw: raw}, nil
}

func decodeBundle(data []byte, width int) ([][]byte, error) {
	var entries [][]byte
	for len(data) > 0 {
		if len(data) < 2 || len(entries) == width {
			return nil, errors.New("bundle: extra bytes or truncated length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, errors.New("bundle: truncated entry")
		}
		entries = append(entries, data[2:2+n])
		data = data[2+n:]
	}
	if len(entries) != width {
		return nil, fmt.Errorf("bundle holds %d entries, want %d", len(entries), width)
	}
	return entries, nil
}

// checkRecords proves each sampled entry of the bundles into the tree with Go's tlog.
func checkRecords(src source, cp checkpoint, hr tlog.HashReader, sample int64) (int64, error) {
	n := cp.tree.N
	step := int64(1)
	if sample > 0 && n > sample {
		step = n / sample
	}
	checked := int64(0)
	var entries [][]byte
	bundle := int64(-1)
	for i := int64(0); i < n; i += step {
		if i/256 != bundle {
			bundle = i / 256
			width := int(n - bundle*256)
			if width > 256 {
				width = 256
			}
			t := tlog.Tile{H: tileHeight, L: -1, N: bundle, W: width}
			data, err := src.read(c2spPath(t))
			if err != nil {
				return checked, err
			}
			if entries, err = decodeBundle(data, width); err != nil {
				return checked, fmt.Errorf("%s: %w", c2spPath(t), err)
			}
		}
		record := tlog.RecordHash(entries[i-bundle*256])
		proof, err := tlog.ProveRecord(n, i, hr)
		if err != nil {
			return checked, fmt.Errorf("prove record %d: %w", i, err)
		}
		if err := tlog.CheckRecord(proof, n, cp.tree.Hash, i, record); err != nil {
			return checked, fmt.Errorf("record %d: %w", i, err)
		}
		checked++
	}
	return checked, nil
}

// checkCosignature verifies a C2SP tlog-cosignature/v1 line by the witness vkey.
func checkCosignature(cp checkpoint, vkey string) (int64, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return 0, fmt.Errorf("witness key %q is malformed", vkey)
	}
	name := parts[0]
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != 0x04 {
		return 0, fmt.Errorf("witness key %q is not a cosignature/v1 key", vkey)
	}
	public := ed25519.PublicKey(raw[1:])
	digest := sha256.Sum256(append([]byte(name+"\n"), raw...))
	keyID := digest[:4]
	signatures := cp.raw[bytes.LastIndex(cp.raw, []byte("\n\n"))+2:]
	for _, line := range strings.Split(string(signatures), "\n") {
		fields := strings.SplitN(strings.TrimPrefix(line, "— "), " ", 2)
		if !strings.HasPrefix(line, "— ") || len(fields) != 2 || fields[0] != name {
			continue
		}
		blob, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil || len(blob) != 4+8+64 || !bytes.Equal(blob[:4], keyID) {
			continue
		}
		timestamp := binary.BigEndian.Uint64(blob[4:12])
		message := fmt.Sprintf("cosignature/v1\ntime %d\n%s", timestamp, cp.body)
		if !ed25519.Verify(public, []byte(message), blob[12:]) {
			return 0, fmt.Errorf("cosignature by %s does not verify", name)
		}
		return int64(timestamp), nil
	}
	return 0, fmt.Errorf("no cosignature by %s", name)
}

func run() (map[string]any, error) {
	logFlag := flag.String("log", "", "URL prefix or folder of the tile log")
	vkey := flag.String("vkey", "", "the log's verifier key")
	old := flag.String("old", "", "an older checkpoint note (file) to check consistency from")
	sample := flag.Int64("sample", 0, "check at most this many records (0: all)")
	var witnesses multiFlag
	flag.Var(&witnesses, "witness", "a witness vkey whose cosignature must verify (repeat)")
	flag.Parse()
	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	src := source{base: *logFlag, client: &http.Client{Timeout: 20 * time.Second}}
	raw, err := src.read("checkpoint")
	if err != nil {
		return nil, err
	}
	cp, err := openCheckpoint(raw, verifier)
	if err != nil {
		return nil, err
	}
	reader := &tileReader{src: src}
	hr := tlog.TileHashReader(cp.tree, reader)
	// Reading the root's own hashes authenticates the tiles along the right edge.
	if root, err := tlog.TreeHash(cp.tree.N, hr); err != nil || root != cp.tree.Hash {
		return nil, fmt.Errorf("tree hash from tiles: %v", err)
	}
	checked, err := checkRecords(src, cp, hr, *sample)
	if err != nil {
		return nil, err
	}
	result := map[string]any{"origin": cp.origin, "size": cp.tree.N, "records_checked": checked}
	if *old != "" {
		oldRaw, err := os.ReadFile(*old)
		if err != nil {
			return nil, err
		}
		previous, err := openCheckpoint(oldRaw, verifier)
		if err != nil {
			return nil, fmt.Errorf("old %w", err)
		}
		proof, err := tlog.ProveTree(cp.tree.N, previous.tree.N, hr)
		if err != nil {
			return nil, fmt.Errorf("prove tree: %w", err)
		}
		if err := tlog.CheckTree(proof, cp.tree.N, cp.tree.Hash, previous.tree.N, previous.tree.Hash); err != nil {
			return nil, fmt.Errorf("consistency %d -> %d: %w", previous.tree.N, cp.tree.N, err)
		}
		// The older size's own (partial) tiles must still be there and match its root.
		oldReader := tlog.TileHashReader(previous.tree, &tileReader{src: src})
		if root, err := tlog.TreeHash(previous.tree.N, oldReader); err != nil || root != previous.tree.Hash {
			return nil, fmt.Errorf("old tree hash from its tiles: %v", err)
		}
		result["consistent_from"] = previous.tree.N
		result["consistency_proof_hashes"] = len(proof)
	}
	cosigned := map[string]int64{}
	for _, w := range witnesses {
		timestamp, err := checkCosignature(cp, w)
		if err != nil {
			return nil, err
		}
		cosigned[strings.SplitN(w, "+", 2)[0]] = timestamp
	}
	result["cosignatures"] = cosigned
	result["tiles_read"] = reader.reads
	return result, nil
}

func main() {
	result, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlogread:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}
