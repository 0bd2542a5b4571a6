"""Layer probe behind the default masked LM's depth (issue 7): which layer of the base predicts masked tokens best?

For each hidden-state layer of the frozen base encoder (0 = embeddings ... 6 = last), a BERT MLM head (dense, GELU,
LayerNorm, decoder tied to the frozen word embeddings, bias) is fitted on that layer's states at the masked
positions of ``--lines`` AG News lines (BERT masking, 15%: 80/10/10; 4 epochs, AdamW lr 3e-3, batch 512 positions),
then scored on 1,000 held-out lines with every chosen position ``[MASK]``-ed (the ``dfkd mlm`` held-out split).
The last line printed is one JSON object: ``{"layer_top5": [...], "layer_top1": [...], ...}``.

    python scripts/probe_mlm_layers.py [--lines 6000]      # about 20 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BertForMaskedLM, DataCollatorForLanguageModeling

from dfkd.distill.mlm import mask_for_eval, read_lines, split_held_out
from dfkd.distill.teacher import resolve_base


def masked_states(model, tokenizer, texts, collator, all_mask: bool, batch_size: int = 64):
    """Hidden states of every layer at the masked positions: ``[(M, H)] * (layers + 1)`` and gold ids ``(M,)``."""
    layers = model.config.num_hidden_layers + 1
    states, gold = [[] for _ in range(layers)], []
    rng = torch.Generator().manual_seed(1)
    for i in tqdm(range(0, len(texts), batch_size), desc="hidden states", unit="batch"):
        if all_mask:  # evaluation: 15% of the non-special tokens, all [MASK], as dfkd mlm's report
            enc, chosen, y = mask_for_eval(tokenizer, texts[i:i + batch_size], 64, 0.15, rng)
        else:  # training: BERT's 80/10/10 masking
            enc = tokenizer(texts[i:i + batch_size], truncation=True, max_length=64, padding=True,
                            return_tensors="pt")
            rows = [{"input_ids": ids[:int(m.sum())].tolist()} for ids, m in zip(enc["input_ids"], enc["attention_mask"])]
            batch = collator(rows)
            chosen = batch["labels"] != -100
            y = batch["labels"][chosen]
            enc["input_ids"] = batch["input_ids"]
        with torch.inference_mode():
            hidden = model.bert(**enc, output_hidden_states=True).hidden_states
        for layer in range(layers):
            states[layer].append(hidden[layer][chosen])
        gold.append(y)
    return [torch.cat(s) for s in states], torch.cat(gold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="minilm-l6")
    ap.add_argument("--text", default="ood/agnews.txt")
    ap.add_argument("--lines", type=int, default=6000)
    args = ap.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    base = resolve_base(args.base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = BertForMaskedLM.from_pretrained(base).eval()
    held_out, train = split_held_out(read_lines([args.text]), 1000, seed=0)  # dfkd mlm's default split
    train = train[:args.lines]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    x_train, y_train = masked_states(model, tokenizer, train, collator, all_mask=False)
    x_test, y_test = masked_states(model, tokenizer, held_out, collator, all_mask=True)
    words = model.bert.embeddings.word_embeddings.weight.detach()
    hidden = words.shape[1]
    top1, top5 = [], []
    for layer in tqdm(range(len(x_train)), desc="probe heads", unit="layer"):
        torch.manual_seed(0)
        head = torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.GELU(),
                                   torch.nn.LayerNorm(hidden, eps=1e-12))
        bias = torch.nn.Parameter(torch.zeros(words.shape[0]))
        opt = torch.optim.AdamW([*head.parameters(), bias], lr=3e-3, weight_decay=0.01)
        x = x_train[layer]
        for _ in range(4):
            for j in torch.randperm(len(y_train)).split(512):
                loss = torch.nn.functional.cross_entropy(head(x[j]) @ words.T + bias, y_train[j])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            top = (head(x_test[layer]) @ words.T + bias).topk(5, -1).indices
        top1.append(round(float((top[:, 0] == y_test).float().mean()), 3))
        top5.append(round(float((top == y_test[:, None]).any(-1).float().mean()), 3))
        print(f"layer {layer}: top-1 {top1[-1]:.3f}  top-5 {top5[-1]:.3f}")
    print(json.dumps({"layer_top1": top1, "layer_top5": top5, "train_positions": len(y_train),
                      "held_out_positions": len(y_test), "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
