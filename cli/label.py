"""``dfkd label``: write the teacher's logits into a saved transfer set."""

from __future__ import annotations

HELP = "write teacher_logits into a transfer set (resumable)"


def register(sub) -> None:
    p = sub.add_parser("label", help=HELP, description=HELP)
    p.add_argument("transfer_set", help="a saved transfer set folder")
    p.add_argument("--teacher", required=True, help="teacher folder, asset name or hub id")
    p.add_argument("--out", help="where to save the labelled set (default: label in place)")
    p.add_argument("--batch-size", type=int, default=128, help="rows per teacher forward pass (default: 128)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per row after truncation (default: 128)")
    p.add_argument("--shard-size", type=int, default=4096, help="rows per saved shard: the unit of resuming and of "
                   "sharing the work between processes (default: 4096)")
    p.set_defaults(func=run)


def run(args) -> None:
    from ..distill.label import label_transfer_set

    out = label_transfer_set(args.transfer_set, args.teacher, args.out, args.batch_size, args.max_length,
                             args.shard_size)
    print(f"labelled {out}")
