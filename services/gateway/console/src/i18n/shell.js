export default {
  'zh-CN': {
    shell: {
      title: 'civicgrid 社区政务',
      nav: {
        home: '首页', desk: '综合窗口', inbox: '审批待办', grid: '网格', worker: '网格员', dashboard: '领导驾驶舱',
        audit: '审计', notifications: '消息',
      },
      signIn: '登录', signOut: '退出', language: '语言', signedInAs: '当前用户',
      welcome: '欢迎使用 civicgrid。请选择您的工作台。',
      notSignedIn: '请先登录。演示账号见 README（密码 civicgrid-local）。',
      forbidden: '您的角色不能使用此页面。',
      loading: '加载中…', retry: '重试', close: '关闭', cancel: '取消', save: '保存', empty: '暂无数据',
      problem: '请求未成功', conflict: '数据已被他人更新，请刷新后重试。', reload: '刷新',
      roles: {
        window_clerk: '窗口受理员', community_reviewer: '社区审核人', street_reviewer: '街道审核人',
        bureau_approver: '区局审批人', leader: '领导', grid_worker: '网格员', department: '部门工作人员',
        auditor: '审计员', admin: '管理员', notifier: '通知服务',
      },
    },
  },
  en: {
    shell: {
      title: 'civicgrid',
      nav: {
        home: 'Home', desk: 'Window desk', inbox: 'Reviewer inbox', grid: 'Grids', worker: 'Grid worker',
        dashboard: 'Dashboard', audit: 'Audit', notifications: 'Notifications',
      },
      signIn: 'Sign in', signOut: 'Sign out', language: 'Language', signedInAs: 'Signed in as',
      welcome: 'Welcome to civicgrid. Choose where you work.',
      notSignedIn: 'Please sign in. The demo users are in the README (password civicgrid-local).',
      forbidden: 'Your role cannot use this page.',
      loading: 'Loading…', retry: 'Retry', close: 'Close', cancel: 'Cancel', save: 'Save', empty: 'Nothing here',
      problem: 'The request did not succeed', conflict: 'Someone else changed this meanwhile. Reload and try again.',
      reload: 'Reload',
      roles: {
        window_clerk: 'Window clerk', community_reviewer: 'Community reviewer', street_reviewer: 'Street reviewer',
        bureau_approver: 'Bureau approver', leader: 'Leader', grid_worker: 'Grid worker', department: 'Department staff',
        auditor: 'Auditor', admin: 'Administrator', notifier: 'Notifier',
      },
    },
  },
}
