"""Built-in model servers that swell launches as replica processes.

`simulated_llm` (a vLLM look-alike driven by engines.llm), `llama_cpp` (a real small LLM on
CPU through llama.cpp's server) and `sklearn_iris` (a KServe v1 classic model); `common`
holds their shared arguments, readiness line and graceful SIGTERM handling.
"""
