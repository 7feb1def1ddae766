"""The LLM gateway: every model call goes through :func:`agents.llm.gateway.complete`.

    from agents.llm.gateway import complete
    from agents.llm.errors import BudgetExhausted, LLMError, RateLimited
    from agents.llm.budgets import llm_budget_extension_request

    try:
        result = complete(organization=org, user=requester, role="manager", messages=messages,
                          response_schema=PLAN_SCHEMA, task_id=task.pk, run_id=run.pk,
                          purpose="plan", step_key="plan")
    except BudgetExhausted as exc:      # park the run and ask for more budget
        approval = llm_budget_extension_request(organization=org, shortfall=exc.shortfall,
                                                requested_by=requester, run_id=run.pk)
    except RateLimited as exc:          # tell the user exc.message (retry in exc.retry_after s)
        ...
    except LLMError as exc:             # no usable answer: exc.message, exc.attempts
        ...
    result.parsed, result.tool_calls, result.scripted, result.metadata["label"], result.scenario

Modules: ``conf`` (settings: deployments, tiers, tunables), ``routing`` (who
serves a call), ``router`` (LiteLLM, imported lazily, and the Routers),
``scripted`` and ``scenarios`` (the offline model), ``budgets``,
``ratelimit``, ``costs``, ``structured``, ``health``, ``selectors``,
``services``, ``signals`` (``budget_warning``). Nothing here imports LiteLLM
at module level (it takes seconds): call ``agents.llm.router.litellm_module()``
once in a worker to warm it up.
"""
