"""Fine-tuning the refine stage's LLM for the job (LlamaRec-style): examples from the bundle's own
retriever, LoRA on a causal LM with a verbalizer loss over the candidate labels, a merged model
that `intentrec llm serve --model DIR` serves. Sits above `serving` (its prompt and retrieval are
the server's own) and needs torch, transformers and peft (the `ranker` extra)."""
