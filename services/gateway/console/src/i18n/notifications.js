// The signed-in user's in-app inbox (站内消息), live.
export default {
  'zh-CN': {
    notifications: {
      title: '消息',
      unread: '未读 {n} 条',
      live: { open: '实时接收中', connecting: '正在连接…', retrying: '连接中断，正在重新连接…' },
      unreadOnly: '只看未读',
      markRead: '标为已读',
      markAllRead: '全部标为已读',
      read: '已读',
      unreadBadge: '未读',
      urgent: '紧急',
      open: '去办理',
      more: '加载更早的消息',
      empty: '没有消息。',
      emptyUnread: '没有未读消息。',
      arrived: '新消息：{title}',
      readAt: '于 {time} 阅读',
      list: '消息列表',
      kinds: {
        approval: '审批', grid: '网格', statistics: '预警', intake: '受理', other: '通知',
      },
    },
  },
  en: {
    notifications: {
      title: 'Notifications',
      unread: '{n} unread',
      live: { open: 'Live', connecting: 'Connecting…', retrying: 'Connection lost, reconnecting…' },
      unreadOnly: 'Unread only',
      markRead: 'Mark read',
      markAllRead: 'Mark all read',
      read: 'Read',
      unreadBadge: 'Unread',
      urgent: 'Urgent',
      open: 'Open',
      more: 'Load older notifications',
      empty: 'No notifications.',
      emptyUnread: 'No unread notifications.',
      arrived: 'New notification: {title}',
      readAt: 'read {time}',
      list: 'Notifications',
      kinds: {
        approval: 'Approval', grid: 'Grid', statistics: 'Alert', intake: 'Intake', other: 'Notice',
      },
    },
  },
}
