"""The console's words in Spanish (default), English and Portuguese.

One flat dict per language; a key missing in one language falls back to
Spanish, so a new label never shows up empty.
"""

from __future__ import annotations

LANGS = {"es": "Español", "en": "English", "pt": "Português"}

ES: dict[str, str] = {
    "title": "Chasqui · consola", "sign_in": "Entrar", "sign_out": "Salir",
    "email": "Correo electrónico", "password": "Contraseña",
    "bad_login": "Correo o contraseña incorrectos.",
    "locked": "Demasiados intentos fallidos. Probá de nuevo en {seconds} s.",
    "bad_csrf": "El formulario venció. Volvé a cargar la página e intentá otra vez.",
    "inbox": "Bandeja", "waiting": "esperando", "search": "Buscar",
    "search_label": "Nombre, teléfono o correo", "filter": "Filtrar", "all": "Todos",
    "status": "Estado", "channel": "Canal", "agent": "Agente", "customer": "Cliente",
    "last_message": "Último mensaje", "waiting_time": "Espera",
    "window": "Ventana WhatsApp", "closed_window": "cerrada", "none": "—",
    "st_bot": "bot", "st_needs_agent": "necesita agente", "st_agent": "con agente",
    "st_closed": "cerrada", "mine": "mías", "no_conversations": "No hay conversaciones.",
    "takeover": "Tomar", "reply": "Responder", "send": "Enviar", "assign": "Asignar",
    "release": "Devolver al bot", "close": "Cerrar", "your_reply": "Tu respuesta",
    "template": "Plantilla aprobada", "template_only": (
        "La ventana de 24 h de WhatsApp está cerrada: solo se puede enviar una "
        "plantilla aprobada."),
    "template_params": "Parámetros (separados por |)", "send_template": "Enviar plantilla",
    "handoff_reason": "Motivo del traspaso", "held_by": "La tiene {agent}",
    "read_only": "Otra persona tiene esta conversación: solo lectura.",
    "customer_panel": "Cliente", "consents": "Consentimientos", "tags": "Etiquetas",
    "attributes": "Atributos", "active_flows": "Flujos activos", "orders": "Pedidos",
    "last_order": "Último pedido", "no_orders": "Sin pedidos registrados.",
    "skipped": "no enviado", "queued": "en cola", "sending": "enviando",
    "sent": "enviado", "delivered": "entregado", "read": "leído", "failed": "falló",
    "received": "recibido", "step": "Paso del flujo", "action_takeover": "tomó la conversación",
    "action_assign": "asignó a {agent}", "action_release": "la devolvió al bot",
    "action_close": "cerró la conversación", "action_message": "escribió",
    "language": "Idioma", "save": "Guardar", "back": "Volver a la bandeja",
    "error": "No se pudo hacer", "live": "En vivo", "phone": "Teléfono",
}

EN: dict[str, str] = {
    "title": "Chasqui · console", "sign_in": "Sign in", "sign_out": "Sign out",
    "email": "E-mail", "password": "Password",
    "bad_login": "Wrong e-mail or password.",
    "locked": "Too many failed attempts. Try again in {seconds} s.",
    "bad_csrf": "The form expired. Reload the page and try again.",
    "inbox": "Inbox", "waiting": "waiting", "search": "Search",
    "search_label": "Name, phone or e-mail", "filter": "Filter", "all": "All",
    "status": "Status", "channel": "Channel", "agent": "Agent", "customer": "Customer",
    "last_message": "Last message", "waiting_time": "Waiting",
    "window": "WhatsApp window", "closed_window": "closed", "none": "—",
    "st_bot": "bot", "st_needs_agent": "needs agent", "st_agent": "with agent",
    "st_closed": "closed", "mine": "mine", "no_conversations": "No conversations.",
    "takeover": "Take over", "reply": "Reply", "send": "Send", "assign": "Assign",
    "release": "Hand back to the bot", "close": "Close", "your_reply": "Your reply",
    "template": "Approved template", "template_only": (
        "WhatsApp's 24-hour window is closed: only an approved template can be sent."),
    "template_params": "Parameters (separated by |)", "send_template": "Send template",
    "handoff_reason": "Hand-off reason", "held_by": "Held by {agent}",
    "read_only": "Someone else holds this conversation: read only.",
    "customer_panel": "Customer", "consents": "Consents", "tags": "Tags",
    "attributes": "Attributes", "active_flows": "Active flows", "orders": "Orders",
    "last_order": "Last order", "no_orders": "No orders stored.",
    "skipped": "not sent", "queued": "queued", "sending": "sending",
    "sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
    "received": "received", "step": "Flow step", "action_takeover": "took over",
    "action_assign": "assigned to {agent}", "action_release": "handed back to the bot",
    "action_close": "closed the conversation", "action_message": "wrote",
    "language": "Language", "save": "Save", "back": "Back to the inbox",
    "error": "Could not do it", "live": "Live", "phone": "Phone",
}

PT: dict[str, str] = {
    "title": "Chasqui · console", "sign_in": "Entrar", "sign_out": "Sair",
    "email": "E-mail", "password": "Senha",
    "bad_login": "E-mail ou senha incorretos.",
    "locked": "Muitas tentativas falharam. Tente de novo em {seconds} s.",
    "bad_csrf": "O formulário expirou. Recarregue a página e tente de novo.",
    "inbox": "Caixa de entrada", "waiting": "aguardando", "search": "Buscar",
    "search_label": "Nome, telefone ou e-mail", "filter": "Filtrar", "all": "Todos",
    "status": "Status", "channel": "Canal", "agent": "Agente", "customer": "Cliente",
    "last_message": "Última mensagem", "waiting_time": "Espera",
    "window": "Janela WhatsApp", "closed_window": "fechada", "none": "—",
    "st_bot": "bot", "st_needs_agent": "precisa de agente", "st_agent": "com agente",
    "st_closed": "fechada", "mine": "minhas", "no_conversations": "Nenhuma conversa.",
    "takeover": "Assumir", "reply": "Responder", "send": "Enviar", "assign": "Atribuir",
    "release": "Devolver ao bot", "close": "Encerrar", "your_reply": "Sua resposta",
    "template": "Modelo aprovado", "template_only": (
        "A janela de 24 h do WhatsApp está fechada: só um modelo aprovado pode ser enviado."),
    "template_params": "Parâmetros (separados por |)", "send_template": "Enviar modelo",
    "handoff_reason": "Motivo da transferência", "held_by": "Com {agent}",
    "read_only": "Outra pessoa está com esta conversa: somente leitura.",
    "customer_panel": "Cliente", "consents": "Consentimentos", "tags": "Etiquetas",
    "attributes": "Atributos", "active_flows": "Fluxos ativos", "orders": "Pedidos",
    "last_order": "Último pedido", "no_orders": "Nenhum pedido registrado.",
    "skipped": "não enviado", "queued": "na fila", "sending": "enviando",
    "sent": "enviado", "delivered": "entregue", "read": "lido", "failed": "falhou",
    "received": "recebido", "step": "Passo do fluxo", "action_takeover": "assumiu a conversa",
    "action_assign": "atribuiu a {agent}", "action_release": "devolveu ao bot",
    "action_close": "encerrou a conversa", "action_message": "escreveu",
    "language": "Idioma", "save": "Salvar", "back": "Voltar à caixa de entrada",
    "error": "Não foi possível", "live": "Ao vivo", "phone": "Telefone",
}

TEXTS = {"es": ES, "en": EN, "pt": PT}


def texts(lang: str | None) -> dict[str, str]:
    """The words for ``lang``, Spanish where that language has none."""
    return {**ES, **TEXTS.get(lang or "es", {})}
