"""``dfkd corpus``: build a general-text corpus for zero-shot KD (the default ``ood/general`` is one)."""

from __future__ import annotations

HELP = "build a general-text corpus for zero-shot KD (the default ood/general is one)"


def register(sub) -> None:
    from ..zeroshot.corpus import DEFAULT_SOURCES

    p = sub.add_parser("corpus", help=HELP, description=HELP)
    p.add_argument("--sources", nargs="+", default=list(DEFAULT_SOURCES),
                   help=f"registered sources ({', '.join(DEFAULT_SOURCES)}) or text files, one document per line "
                   "(default: all registered)")
    p.add_argument("--out", required=True, help="folder of the corpus")
    p.add_argument("--min-words", type=int, default=3, help="shortest sentence kept, in words (default: 3)")
    p.add_argument("--max-words", type=int, default=80, help="longest sentence kept, in words (default: 80)")
    p.add_argument("--min-sentences", type=int, default=1, help="fail (writing nothing) below this many sentences "
                   "(default: 1)")
    p.set_defaults(func=run)


def run(args) -> None:
    from ..zeroshot.corpus import build_corpus

    card = build_corpus(args.sources, args.out, min_words=args.min_words, max_words=args.max_words,
                        min_sentences=args.min_sentences)
    per_source = {name: s["kept"] for name, s in card["sources"].items()}
    print(f"wrote {card['sentences']} sentences ({card['words_total']} words) to {args.out}: {per_source}")
