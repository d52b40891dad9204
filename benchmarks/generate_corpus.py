"""Seeded generator of large, realistic HSJ-style corpora for the scale benchmarks.

Why a generator: the five real pages hold 79 articles; scale targets are about 10k to 1M. Texts
are drawn from word-bigram Markov chains trained on the bundled sample pages and, when present,
the AG News split in ``../shared`` (never committed), so lengths, vocabulary and the share of
distinct texts look like real news rather than like one string repeated. Like the real pages,
an article appears on one or more ICS pages (about 1.25 slots per unique article), about 8% are
opinion columns whose standfirst is a stock blurb, and most articles have a photo caption.

    python benchmarks/generate_corpus.py --articles 100000 --out /tmp/corpus100k --seed 0

writes ``page_000000.txt``... (20 slots a page) in the HSJ page format the parser reads.
"""
from __future__ import annotations

import argparse
import csv
import random
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
AG_NEWS = REPO.parent / "shared" / "benchmarks" / "ag_news" / "test.csv"

SYSTEMS = [f"{name} ICS" for name in (
    "Bath and North East Somerset", "Bedfordshire, Luton and Milton Keynes", "Birmingham and Solihull",
    "Black Country", "Bristol, North Somerset and South Gloucestershire", "Buckinghamshire",
    "Cambridgeshire and Peterborough", "Cheshire and Merseyside", "Cornwall and the Isles of Scilly",
    "Coventry and Warwickshire", "Derby and Derbyshire", "Devon", "Dorset", "Frimley",
    "Gloucestershire", "Greater Manchester", "Hampshire and Isle of Wight",
    "Herefordshire and Worcestershire", "Hertfordshire and West Essex", "Humber and North Yorkshire",
    "Kent and Medway", "Lancashire and South Cumbria", "Leicester, Leicestershire and Rutland",
    "Lincolnshire", "Mid and South Essex", "Norfolk and Waveney", "North Central London",
    "North East and North Cumbria", "North East London", "North West London", "Northamptonshire",
    "Nottingham and Nottinghamshire", "Shropshire, Telford and Wrekin", "Somerset",
    "South East London", "South West London", "South Yorkshire", "Staffordshire and Stoke-on-Trent",
    "Suffolk and North East Essex", "Surrey Heartlands", "Sussex", "West Yorkshire")]
SERIES = {
    "London Eye": "Essential insight into England’s biggest health economy, by HSJ bureau chief.",
    "West Country Chronicle": "From Cornwall to the Cotswolds, West Country Chronicle offers essential insight "
                              "into NHS matters in the South West. Contact me in confidence here.",
    "Recovery Watch": "Recovering services from the covid crisis is a big task for NHS leaders. The Recovery "
                      "Watch newsletter tracks prospects and progress.",
    "The Integrator": "Insider tales and must-read analysis on how integration is reshaping health and care "
                      "systems, NHS providers, primary care, and commissioning.",
}
CAPTIONS = ["Money, finance and accounts", "money coins finance", "Mobile phone", "Hospital beds",
            "empty board room meeting", "Digital innovation", "Doctor at GP surgery", "CT scanner",
            "Pay wage slip", "Parliament, policy, politician, government", "Barrister's wig court lawyer legal",
            "Patients waiting", "Map ambulance response", "pharmacy medicines management drugs",
            "Construction building site cranes blueprint plans", "Folder files report"]
KICKERS = ["Exclusive: ", "Revealed: "]
_WORD = re.compile(r"\S+")


def _sample_texts() -> list[str]:
    texts = []
    for page in sorted(SAMPLES.glob("*.txt")):
        lines = [ln.strip().replace("\u00a0", " ") for ln in page.read_text(encoding="utf-8").splitlines()]
        texts.extend(ln for ln in lines[1:] if len(ln.split()) >= 4)
    return texts


def _ag_texts(limit: int = 7600) -> list[str]:
    if not AG_NEWS.is_file():
        return []
    out = []
    with open(AG_NEWS, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            out.extend(t.replace("\\", " ") for t in row[1:3])
            if len(out) >= 2 * limit:
                break
    return out


class Markov:
    """Word-bigram chain; ``sentence`` draws a text of a target length (seeded by the caller's rng)."""

    def __init__(self, texts: list[str]) -> None:
        self.next: dict[str, list[str]] = defaultdict(list)
        self.starts: list[str] = []
        for text in texts:
            words = _WORD.findall(text)
            if len(words) < 2:
                continue
            self.starts.append(words[0])
            for a, b in zip(words, words[1:]):
                self.next[a].append(b)

    def sentence(self, rng: random.Random, n_words: int) -> str:
        word = rng.choice(self.starts)
        words = [word]
        while len(words) < n_words:
            options = self.next.get(word)
            word = rng.choice(options) if options else rng.choice(self.starts)
            words.append(word)
        return " ".join(words)


def generate(n_articles: int, seed: int = 0):
    """Yield (system, caption, headline, standfirst) page slots; about 1.25 slots per unique article."""
    rng = random.Random(seed)
    sample = _sample_texts()
    chain = Markov(sample * 20 + _ag_texts())
    pool: list[tuple[str | None, str, str | None]] = []
    made = 0
    while made < n_articles:
        if pool and rng.random() < 0.2:  # the same article carried by another ICS page
            caption, headline, standfirst = rng.choice(pool[-2000:])
        else:
            made += 1
            caption = rng.choice(CAPTIONS) if rng.random() < 0.65 else None
            if rng.random() < 0.08:
                series = rng.choice(list(SERIES))
                headline = f"{series}: " + chain.sentence(rng, rng.randint(4, 9))
                standfirst = SERIES[series]
            else:
                kicker = rng.choice(KICKERS) if rng.random() < 0.15 else ""
                headline = kicker + chain.sentence(rng, rng.randint(6, 14)).rstrip(".")
                standfirst = chain.sentence(rng, rng.randint(16, 40)).rstrip(".") + "." \
                    if rng.random() < 0.97 else None
            headline = headline[0].upper() + headline[1:]
            pool.append((caption, headline, standfirst))
        yield rng.choice(SYSTEMS), caption, headline, standfirst


def render_page(title: str, slots: list[tuple[str | None, str, str | None]]) -> str:
    """One page in the HSJ listing format the parser reads."""
    parts = [title, ""]
    for caption, headline, standfirst in slots:
        if caption:
            parts += [caption, ""]
        else:
            parts += [""]
        parts += [headline, "", ""]
        parts += [standfirst or "", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def write_corpus(n_articles: int, out: Path, seed: int = 0, per_page: int = 20) -> int:
    """Write pages of ``per_page`` slots into ``out``; returns the number of page files."""
    out.mkdir(parents=True, exist_ok=True)
    pages = 0
    current: list = []
    title = None
    for system, caption, headline, standfirst in generate(n_articles, seed):
        title = title or system
        current.append((caption, headline, standfirst))
        if len(current) == per_page:
            (out / f"page_{pages:06d}.txt").write_text(render_page(title, current), encoding="utf-8")
            pages += 1
            current, title = [], None
    if current:
        (out / f"page_{pages:06d}.txt").write_text(render_page(title or SYSTEMS[0], current), encoding="utf-8")
        pages += 1
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000, help="unique articles to generate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pages = write_corpus(args.articles, args.out, args.seed)
    print(f"wrote {pages} pages for {args.articles} unique articles to {args.out}")


if __name__ == "__main__":
    main()
