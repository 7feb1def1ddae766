"""The LLM gateway: every model call goes through ``agents.llm.gateway.complete``.

Nothing here imports LiteLLM at module level (it takes seconds); see ``agents.llm.router``.
"""
